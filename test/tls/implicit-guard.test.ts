import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startTlsServer, TlsLineClient, type TlsTestServer } from './helpers.js';

let t: TlsTestServer;
before(async () => {
  t = await startTlsServer({ config: { guard: { deny: ['127.0.0.9'] } } });
});
after(() => t.close());

test('a denied address on the implicit port is dropped before any TLS handshake', async () => {
  const outcome = await new Promise<string>((resolve) => {
    const raw = connect({ port: t.implicitPort, host: '127.0.0.1', localAddress: '127.0.0.9' });
    const s = tlsConnect({ socket: raw, rejectUnauthorized: false });
    s.once('secureConnect', () => {
      s.destroy();
      resolve('handshake');
    });
    s.once('error', () => resolve('refused'));
    s.once('close', () => resolve('refused'));
  });
  assert.equal(outcome, 'refused');
  const ok = await TlsLineClient.implicit(t.implicitPort);
  await ok.login();
  assert.match(await ok.cmd('PWD'), /^257 /);
  ok.close();
});
