import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { Client } from 'basic-ftp';
import { validateConfig } from '../../src/config/load.js';
import { TlsLayer } from '../../src/tls/layer.js';
import { RawClient, run } from '../helpers/clients.js';
import { PASSWORD } from '../helpers/server.js';
import { makeCert, protectedClient, startTlsServer, tlsData, TlsLineClient, type TlsTestServer } from './helpers.js';

async function stillServing(t: TlsTestServer): Promise<void> {
  const client = new Client(10_000);
  try {
    await client.access({ host: '127.0.0.1', port: t.implicitPort, user: 'alice', password: PASSWORD, secure: 'implicit', secureOptions: { rejectUnauthorized: false } });
    await client.list();
  } finally {
    client.close();
  }
}

describe('bad input on TLS ports', { concurrency: 1 }, () => {
  let t: TlsTestServer;
  before(async () => {
    t = await startTlsServer({ config: { timeouts: { tls_handshake: 1 } } });
  });
  after(() => t.close());

  const security = () => t.eventsNamed('security');

  for (const [what, bytes, guess] of [
    ['a plain FTP command', 'USER alice\r\n', /looks like ftp/],
    ['an HTTP request', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', /looks like http/],
    ['garbage', '\x00\x01\x02garbage\xff', /looks like garbage/],
    ['a malformed ClientHello', '\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00', /bad ClientHello/],
  ] as const) {
    test(`${what} on the implicit port: closed with one log line`, async () => {
      const before = security().length;
      const c = await RawClient.connect(t.implicitPort);
      c.write(Buffer.from(bytes, 'latin1'));
      assert.equal(await c.waitClosed(5000), true);
      assert.equal(await c.reply(500).catch(() => ''), '', 'no FTP reply on the implicit port');
      await new Promise((r) => setTimeout(r, 50));
      const added = security().slice(before);
      assert.equal(added.length, 1, JSON.stringify(added));
      assert.match(added[0]!.detail!, guess);
      await stillServing(t);
    });
  }

  test('pipelined commands then close_notify and FIN (half-close) on the implicit port: every reply comes, then the close', async () => {
    // Node's tls.connect passes allowHalfOpen to the socket it makes; its typings do not list it.
    const s = tlsConnect({ port: t.implicitPort, host: '127.0.0.1', rejectUnauthorized: false, allowHalfOpen: true } as ConnectionOptions);
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.once('secureConnect', () => {
      s.write(`USER alice\r\nPASS ${PASSWORD}\r\nPWD\r\nNOOP\r\n`);
      s.end();
    });
    await closed;
    assert.deepEqual(
      out.split('\r\n').map((l) => l.slice(0, 3)),
      ['220', '331', '230', '257', '200', ''],
      out,
    );
  });

  test('a client that half-closes control while its data connection is in its TLS handshake still gets its upload stored', async () => {
    const c = await protectedClient(t.port);
    const session = await c.session();
    const epsv = await c.cmd('EPSV');
    const port = Number(/\(\|\|\|(\d+)\|\)/.exec(epsv)![1]);
    const { connect } = await import('node:net');
    const raw = connect({ port, host: '127.0.0.1' });
    await new Promise((r) => raw.once('connect', r));
    c.socket.write('STOR fin-during-handshake.bin\r\n');
    assert.match(await c.reply(), /^150 /);
    c.socket.end();
    // The FIN is in while the data connection waits for its ClientHello: the transfer was connected, not waiting.
    await new Promise((r) => setTimeout(r, 200));
    const data = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', session });
    await new Promise((r) => data.once('secureConnect', r));
    data.end(Buffer.alloc(50_000, 7));
    assert.match(await c.reply(), /^226 /);
    assert.ok(await c.waitClosed(5000));
    assert.equal(readFileSync(join(t.root, 'fin-during-handshake.bin')).length, 50_000);
  });

  test('garbage instead of a ClientHello after AUTH TLS: the session closes, logged', async () => {
    const before = security().length;
    const c = await RawClient.connect(t.port);
    await c.reply();
    assert.match(await c.cmd('AUTH TLS'), /^234/);
    c.write('this is not TLS\r\n');
    assert.equal(await c.waitClosed(5000), true);
    assert.ok(security().slice(before).some((e) => e.event === 'tls-handshake-failed'));
    await stillServing(t);
  });

  test('a stalled handshake (nothing, or half a ClientHello) is closed after timeouts.tls_handshake', async () => {
    const silent = await RawClient.connect(t.implicitPort);
    const half = await RawClient.connect(t.implicitPort);
    half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]));
    const explicit = await RawClient.connect(t.port);
    await explicit.reply();
    await explicit.cmd('AUTH TLS');
    const started = Date.now();
    assert.equal(await silent.waitClosed(5000), true);
    assert.equal(await half.waitClosed(5000), true);
    assert.equal(await explicit.waitClosed(5000), true);
    assert.ok(Date.now() - started < 4000);
    assert.ok(security().some((e) => e.event === 'tls-handshake-failed' && /timed out/.test(e.detail ?? '')));
    await stillServing(t);
  });

  test('a client that drops the TLS data connection mid-transfer: 426, the session goes on', async () => {
    writeFileSync(join(t.root, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7));
    const c = await protectedClient(t.port);
    try {
      const epsv = await c.cmd('EPSV');
      const port = Number(/\|\|\|(\d+)\|/.exec(epsv)![1]);
      const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, session: await c.session() });
      s.on('error', () => undefined);
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got > 100_000) s.destroy();
      });
      c.socket.write('RETR big.bin\r\n');
      assert.match(await c.reply(), /^150/);
      assert.match(await c.reply(), /^4\d\d /);
      assert.match((await tlsData(c, 'NLST', await c.session())).final, /^226/);
    } finally {
      c.close();
    }
  });

  test('a PROT P upload cut by a TCP reset while its data is still queued: 426, nothing stored', async () => {
    // Python's ftplib in a process of its own: the reset must reach the server while it is still reading.
    const script = `
import ftplib, socket, ssl, sys
ctx = ssl._create_unverified_context()
class Ftps(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        return self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session), size
f = Ftps(context=ctx, timeout=10)
f.connect('127.0.0.1', int(sys.argv[1])); f.auth(); f.login('alice', sys.argv[2]); f.prot_p(); f.voidcmd('TYPE I')
for i in range(5):
    c = f.transfercmd('STOR tls-reset-%d.bin' % i)
    for k in range(40): c.sendall(b'x' * 65536)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
    c.close()
    try: print(f.getresp())
    except ftplib.Error as e: print(e)
`;
    const r = await run('python3', ['-c', script, String(t.port), PASSWORD], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((line) => line.slice(0, 3)), ['426', '426', '426', '426', '426'], r.stdout);
    assert.deepEqual(readdirSync(t.root).filter((name) => name.includes('tls-reset-')), []);
  });
});

describe('certificate reload', () => {
  test('open sessions keep working, new ones see the new certificate (reload() and file watch)', async () => {
    const t = await startTlsServer();
    try {
      const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
      const peer = async (): Promise<string> => {
        const c = await TlsLineClient.implicit(t.implicitPort);
        const fp = c.socket.getPeerX509Certificate()!.fingerprint256;
        c.close();
        return fp;
      };
      const first = fingerprintOf(t.certFile);
      assert.equal(await peer(), first);
      const old = await protectedClient(t.port);
      const basic = new Client(10_000);
      await basic.access({ host: '127.0.0.1', port: t.implicitPort, user: 'alice', password: PASSWORD, secure: 'implicit', secureOptions: { rejectUnauthorized: false } });

      // Replace the files (as certbot does: new files renamed over the old ones) and reload.
      const next = makeCert(undefined, 'reloaded.example');
      renameSync(next.keyFile, t.keyFile);
      renameSync(next.certFile, t.certFile);
      rmSync(next.dir, { recursive: true, force: true });
      const second = fingerprintOf(t.certFile);
      assert.notEqual(second, first);
      assert.equal(await t.tls.reload('test'), true);
      assert.equal(await peer(), second);
      assert.equal(t.tls.fingerprint, second);

      // Sessions opened before the reload go on, data connections included.
      assert.match(await old.cmd('NOOP'), /^200/);
      assert.match((await tlsData(old, 'NLST', await old.session())).final, /^226/);
      await basic.uploadFrom(Readable.from([Buffer.from('after reload')]), 'after.txt');
      assert.ok((await basic.list()).some((f) => f.name === 'after.txt'));
      old.close();
      basic.close();

      // The file watcher picks up the next change by itself.
      t.tls.watch(100);
      const third = makeCert(undefined, 'watched.example');
      renameSync(third.keyFile, t.keyFile);
      renameSync(third.certFile, t.certFile);
      rmSync(third.dir, { recursive: true, force: true });
      const want = fingerprintOf(t.certFile);
      const deadline = Date.now() + 5000;
      while (t.tls.fingerprint !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await peer(), want);

      // A broken pair is refused and the current certificate stays.
      writeFileSync(t.certFile, 'not a certificate');
      assert.equal(await t.tls.reload('broken'), false);
      assert.equal(await peer(), want);
    } finally {
      await t.close();
    }
  });
});

test('a renewal that swaps the key, then the certificate, a poll later, is one good reload and no failed one', async () => {
  const { certFile, keyFile, dir } = makeCert();
  const logs: Array<Record<string, unknown> | undefined> = [];
  const config = validateConfig({ root: '/nonexistent', state_dir: join(dir, 'state'), tls: { cert: certFile, key: keyFile } });
  const layer = (await TlsLayer.create(config, { log: (_level, _message, fields) => logs.push(fields) }))!;
  try {
    layer.watch(200);
    const next = makeCert(undefined, 'renewed.example');
    const want = new X509Certificate(readFileSync(next.certFile)).fingerprint256;
    renameSync(next.keyFile, keyFile);
    // Long enough for a poll to see the new key with the old certificate.
    await new Promise((r) => setTimeout(r, 300));
    renameSync(next.certFile, certFile);
    rmSync(next.dir, { recursive: true, force: true });
    const deadline = Date.now() + 5000;
    while (layer.fingerprint !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(layer.fingerprint, want);
    assert.deepEqual(logs.map((f) => f?.event), ['tls-cert-reloaded']);
  } finally {
    layer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openssl is available for the certificate tests', () => {
  assert.match(execFileSync('openssl', ['version'], { encoding: 'utf8' }), /OpenSSL/);
});
