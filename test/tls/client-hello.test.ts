import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { scanClientHello } from '../../src/tls/client-hello.js';
import { makeCert } from './helpers.js';

/** The first bytes a Node TLS client sends, optionally offering `session`. */
async function captureHello(options: { session?: Buffer; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s: Socket) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (scanClientHello(buf).kind !== 'more') {
          resolve(buf);
          s.destroy();
        }
      });
    }),
  );
  const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

async function realSession(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<Buffer> {
  const { certFile, keyFile, dir } = makeCert();
  const srv = createTlsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (s) => s.end('x'));
  rmSync(dir, { recursive: true, force: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const session = await new Promise<Buffer>((resolve) => {
    const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, maxVersion });
    c.once('session', (s: Buffer) => resolve(s));
    c.on('data', () => undefined);
  });
  srv.close();
  return session;
}

test('a fresh ClientHello: no ticket, no PSK', async () => {
  const scan = scanClientHello(await captureHello({}));
  assert.equal(scan.kind, 'hello');
  if (scan.kind !== 'hello') return;
  assert.equal(scan.hello.ticket, undefined);
  assert.deepEqual(scan.hello.pskIdentities, []);
});

test('a TLS 1.3 resumption offers a PSK identity; a TLS 1.2 one a ticket', async () => {
  const s13 = scanClientHello(await captureHello({ session: await realSession('TLSv1.3') }));
  assert.ok(s13.kind === 'hello' && s13.hello.pskIdentities.length === 1 && s13.hello.pskIdentities[0]!.length > 32);
  const s12 = scanClientHello(await captureHello({ session: await realSession('TLSv1.2'), maxVersion: 'TLSv1.2' }));
  assert.ok(s12.kind === 'hello' && s12.hello.ticket !== undefined && s12.hello.ticket.length > 32);
});

test('partial input asks for more; other protocols are named; junk is malformed', async () => {
  const hello = await captureHello({});
  for (const cut of [1, 3, 5, 20, hello.length - 1]) assert.equal(scanClientHello(hello.subarray(0, cut)).kind, 'more');
  assert.deepEqual(scanClientHello(Buffer.from('USER alice\r\n')), { kind: 'not-tls', guess: 'ftp' });
  assert.deepEqual(scanClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'not-tls', guess: 'http' });
  assert.deepEqual(scanClientHello(Buffer.from([0, 1, 2, 3])), { kind: 'not-tls', guess: 'garbage' });
  assert.equal(scanClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0, 0, 0])).kind, 'malformed');
  // A ClientHello whose inner lengths lie.
  const bad = Buffer.from(hello);
  bad.writeUInt16BE(0xffff, 5 + 4 + 2 + 32 + 1 + (bad[5 + 4 + 2 + 32]! ?? 0));
  assert.notEqual(scanClientHello(bad).kind, 'hello');
  // Endless records never complete a hello: bounded.
  const rec = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff]), Buffer.alloc(0x4000 - 4)]);
  assert.equal(scanClientHello(Buffer.concat([rec, rec, rec])).kind, 'malformed');
});
