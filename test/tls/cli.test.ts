import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { flagsToConfig } from '../../src/cli/serve-options.js';
import { isZeroConfigStart } from '../../src/cli/serve-tls.js';
import { run } from '../helpers/clients.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(repo, 'bin', 'moat.js');
const children = new Set<ChildProcess>();
const dirs: string[] = [];
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'moat-tls-cli-'));
  dirs.push(d);
  return d;
}

async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function serve(args: string[], cwd: string): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.resume();
  const deadline = Date.now() + 30_000;
  const tls = args.length === 0 || args.some((a) => a.startsWith('--tls') || a === '--implicit-listen');
  while (!/Moat is serving[\s\S]*\n$/.test(err) || (tls && !/SHA-256 fingerprint: \S+\n/.test(err))) {
    if (child.exitCode !== null) throw new Error(`moat serve exited ${child.exitCode}:\n${err}`);
    if (Date.now() > deadline) throw new Error(`moat serve did not start:\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 100));
  return { child, stderr: () => err };
}

describe('moat serve: TLS flags and the self-signed rule', { concurrency: 1 }, () => {
  test('which starts are the zero-configuration start', () => {
    assert.equal(isZeroConfigStart({}), true);
    assert.equal(isZeroConfigStart({ pasvPorts: '40000-40100' }), true);
    assert.equal(isZeroConfigStart({ listen: ['127.0.0.1:2121'] }), false);
    assert.equal(isZeroConfigStart({ root: 'x' }), false);
    assert.equal(isZeroConfigStart({ users: 'u.json' }), false);
    assert.equal(isZeroConfigStart({ config: 'moat.toml' }), false);
    assert.equal(isZeroConfigStart({ tls: 'off' }), false);
  });

  test('flags map onto the tls section', () => {
    assert.deepEqual(flagsToConfig({ tls: 'required', implicitListen: ['127.0.0.1:990'] }).tls, {
      cert: undefined,
      key: undefined,
      implicit_listen: ['127.0.0.1:990'],
      control: 'required',
      data: 'required',
      generate_self_signed: true,
    });
    const withCert = flagsToConfig({ tlsCert: 'c.pem', tlsKey: 'k.pem' }).tls as Record<string, unknown>;
    assert.equal(withCert.generate_self_signed, undefined);
    assert.equal((flagsToConfig({ tls: 'off' }).tls as Record<string, unknown>).data, undefined);
    assert.equal((flagsToConfig({}).tls as Record<string, unknown>).generate_self_signed, undefined);
  });

  test('--tls-self-signed --implicit-listen: FTPS with a generated certificate (key 0600), pinned with --cacert', async () => {
    const dir = await tempDir();
    const s = await serve(['--listen', '127.0.0.1:0', '--implicit-listen', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--root', join(dir, 'root'), '--pasv-ports', '43950-43969', '--tls-self-signed'], dir);
    const err = s.stderr();
    const port = /ftp:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1];
    const implicitPort = /ftps:\/\/127\.0\.0\.1:(\d+)/.exec(err)![1];
    const password = /password: (\S+)/.exec(err)![1];
    const fingerprint = /SHA-256 fingerprint: (\S+)/.exec(err)![1];
    const certFile = join(dir, 'state', 'tls', 'cert.pem');
    assert.equal(new X509Certificate(await readFile(certFile)).fingerprint256, fingerprint);
    assert.equal((await stat(join(dir, 'state', 'tls', 'key.pem'))).mode & 0o777, 0o600);
    const explicit = await run('curl', ['-sS', '--ssl-reqd', '--cacert', certFile, '--user', `demo:${password}`, `ftp://127.0.0.1:${port}/`]);
    assert.equal(explicit.code, 0, explicit.stderr);
    const implicit = await run('curl', ['-sS', '--cacert', certFile, '--user', `demo:${password}`, `ftps://127.0.0.1:${implicitPort}/`]);
    assert.equal(implicit.code, 0, implicit.stderr);
    const plain = await run('curl', ['-sS', '--user', `demo:${password}`, `ftp://127.0.0.1:${port}/`]);
    assert.equal(plain.code, 67, 'plain login refused (530)');
    s.child.kill('SIGTERM');
  });

  test('a flag-driven start without TLS flags stays plain FTP', async () => {
    const dir = await tempDir();
    const s = await serve(['--listen', '127.0.0.1:0', '--root', join(dir, 'root'), '--state-dir', join(dir, 'state'), '--pasv-ports', '43970-43989'], dir);
    assert.doesNotMatch(s.stderr(), /FTPS/);
    const port = /ftp:\/\/127\.0\.0\.1:(\d+)/.exec(s.stderr())![1];
    const password = /password: (\S+)/.exec(s.stderr())![1];
    const plain = await run('curl', ['-sS', '--user', `demo:${password}`, `ftp://127.0.0.1:${port}/`]);
    assert.equal(plain.code, 0, plain.stderr);
    await assert.rejects(stat(join(dir, 'state', 'tls')));
    s.child.kill('SIGTERM');
  });

  test('the zero-configuration start (what npm start runs) serves explicit FTPS with its generated certificate', async (t) => {
    if (!(await portFree(2121))) return t.skip('127.0.0.1:2121 is in use');
    const dir = await tempDir();
    const s = await serve([], dir);
    const password = /password: (\S+)/.exec(s.stderr())![1];
    assert.match(s.stderr(), /Try: curl --ssl-reqd --cacert /);
    const certFile = join(dir, '.moat', 'tls', 'cert.pem');
    const r = await run('curl', ['-sS', '--ssl-reqd', '--cacert', certFile, '--user', `demo:${password}`, 'ftp://127.0.0.1:2121/']);
    assert.equal(r.code, 0, r.stderr);
    s.child.kill('SIGTERM');
  });

  test('moat cert generate: writes a certificate and a 0600 key, prints the fingerprint, refuses to overwrite', async () => {
    const dir = await tempDir();
    const gen = (extra: string[] = []) =>
      run(process.execPath, [BIN, 'cert', 'generate', '--state-dir', join(dir, 'st'), '--cn', 'ftp.example.org', '--san', '192.0.2.7', ...extra], { cwd: repo });
    const r = await gen();
    assert.equal(r.code, 0, r.stderr);
    const cert = new X509Certificate(await readFile(join(dir, 'st', 'tls', 'cert.pem')));
    assert.match(r.stdout, new RegExp(`SHA-256 fingerprint: ${cert.fingerprint256}`));
    assert.match(cert.subjectAltName ?? '', /DNS:ftp\.example\.org/);
    assert.match(cert.subjectAltName ?? '', /IP Address:192\.0\.2\.7/);
    assert.equal((await stat(join(dir, 'st', 'tls', 'key.pem'))).mode & 0o777, 0o600);
    const again = await gen();
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists.*--force/);
    assert.equal((await gen(['--force'])).code, 0);
  });
});
