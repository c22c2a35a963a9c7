import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from 'basic-ftp';
import { FileUserStore } from '../../src/auth/file-store.js';
import { resolveRunAs } from '../../src/guard/privileges.js';
import { PASSWORD } from '../helpers/server.js';
import { run } from '../helpers/clients.js';
import { makeCert } from '../tls/helpers.js';

const MOAT = fileURLToPath(new URL('../../bin/moat.js', import.meta.url));
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CI runs as root): switching users is only possible from root';

function passiveRange(): string {
  const base = 48000 + Math.floor(Math.random() * 90) * 20;
  return `${base}-${base + 19}`;
}

/** Start `moat serve` and resolve once it printed its address. */
function serve(args: string[]): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(process.execPath, [MOAT, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moat serve did not start: ${err}`)), 30_000);
    const check = () => {
      const m = /ftp:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => err });
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moat serve exited ${code}: ${err}`));
    });
  });
}

/** `moat serve --run-as nobody` with its users file (alice), state folder and log file under `base`. */
async function serveAsNobody(base: string, root: string, extra: string[] = []) {
  await mkdir(base, { recursive: true });
  const usersFile = join(base, 'users.json');
  const users = await FileUserStore.open(usersFile);
  await users.add('alice', PASSWORD, { home: '.', permissions: 'elradfmwMT' });
  await users.save();
  const stateDir = join(base, 'state');
  const logFile = join(base, 'moat.log');
  const started = await serve([
    '--listen', '127.0.0.1:0', '--root', root, '--users', usersFile, '--state-dir', stateDir,
    '--pasv-ports', passiveRange(), '--log-file', logFile, '--run-as', 'nobody', ...extra,
  ]);
  return { started, stateDir, logFile };
}

describe('privileges', { skip }, () => {
  let dir: string;
  let child: ChildProcess | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moat-runas-'));
    await chmod(dir, 0o755);
  });
  after(async () => {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  test('started as root with run_as = "nobody": binds, then runs as nobody; uploads work into its folder', async () => {
    const nobody = resolveRunAs('nobody');
    const root = join(dir, 'root');
    await mkdir(root);
    await chown(root, nobody.uid, nobody.gid);
    const { started, stateDir, logFile } = await serveAsNobody(dir, root);
    child = started.child;
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status)!.slice(1).map(Number);
    const gids = /^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status)!.slice(1).map(Number);
    assert.deepEqual(uids, [nobody.uid, nobody.uid, nobody.uid, nobody.uid], 'real, effective, saved and fs uid');
    assert.deepEqual(gids, [nobody.gid, nobody.gid, nobody.gid, nobody.gid]);
    assert.match(/^Groups:\s*(.*)$/m.exec(status)![1]!.trim(), new RegExp(`^(${nobody.gid})?$`), 'no supplementary root groups');

    const client = new Client(10_000);
    try {
      await client.access({ host: '127.0.0.1', port: started.port, user: 'alice', password: PASSWORD });
      await client.uploadFrom(Readable.from(Buffer.from('uploaded as nobody')), 'up.txt');
    } finally {
      client.close();
    }
    const up = await stat(join(root, 'up.txt'));
    assert.equal(up.uid, nobody.uid, 'the file belongs to nobody');
    assert.equal(await readFile(join(root, 'up.txt'), 'utf8'), 'uploaded as nobody');
    assert.equal((await stat(stateDir)).uid, nobody.uid, 'the state folder (bans.json) is writable by nobody');
    const log = await readFile(logFile, 'utf8');
    assert.match(log, /"event":"privileges".*running as nobody/);
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
    child = undefined;
  });

  test('run_as with Moat\'s own self-signed certificate: handed to the user, so SIGHUP reloads it', async () => {
    const nobody = resolveRunAs('nobody');
    const base = join(dir, 'selfsigned');
    const { started, stateDir, logFile } = await serveAsNobody(base, join(base, 'root'), ['--tls-self-signed']);
    child = started.child;
    for (const path of ['tls', 'tls/cert.pem', 'tls/key.pem']) assert.equal((await stat(join(stateDir, path))).uid, nobody.uid, path);
    // A renewed pair written into the same files (as a renewal job running as root would), then SIGHUP.
    const renewed = makeCert();
    await writeFile(join(stateDir, 'tls', 'cert.pem'), await readFile(renewed.certFile));
    await writeFile(join(stateDir, 'tls', 'key.pem'), await readFile(renewed.keyFile));
    await rm(renewed.dir, { recursive: true, force: true });
    child.kill('SIGHUP');
    let log = '';
    for (let i = 0; i < 100 && !/tls-cert-reload/.test(log); i++) {
      await new Promise((r) => setTimeout(r, 50));
      log = await readFile(logFile, 'utf8');
    }
    // SIGHUP, or the file watch if its poll came first.
    assert.match(log, /"event":"tls-cert-reloaded","reason":"(SIGHUP|file changed)"/);
    assert.doesNotMatch(log, /tls-cert-reload-failed/);
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
    child = undefined;
  });

  test('as root without run_as on a non-loopback listener: refuses to start and says why', async () => {
    const r = await run(process.execPath, [
      MOAT, 'serve', '--listen', '0.0.0.0:0', '--root', join(dir, 'r2'), '--users', join(dir, 'u2.json'), '--state-dir', join(dir, 's2'),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to run as root.*run_as.*--allow-root/s);
  });

  test('as root without run_as on loopback only: runs, with a warning', async () => {
    const usersFile = join(dir, 'u3.json');
    const users = await FileUserStore.open(usersFile);
    await users.add('alice', PASSWORD, { home: '.', permissions: 'elr' });
    await users.save();
    const started = await serve([
      '--listen', '127.0.0.1:0', '--root', join(dir, 'r3'), '--users', usersFile, '--state-dir', join(dir, 's3'),
      '--pasv-ports', passiveRange(), '--log-level', 'silent',
    ]);
    child = started.child;
    assert.match(started.stderr(), /warning: running as root on loopback listeners only/);
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
    child = undefined;
  });
});
