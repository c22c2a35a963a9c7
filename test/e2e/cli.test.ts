import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { passivePort, RawClient, refusesConnections, run, type RunResult } from '../helpers/clients.js';

/*
 * The real CLI, as an operator runs it: `node bin/moat.js ...` in a temp
 * working folder. Help and version output, `moat user add` + `moat serve`
 * from flags only (the scripted start), JSON logs on stdout,
 * `check-config` errors that name the key, and the zero-config first start
 * with its one-time demo password. Every server child is stopped in `after`.
 */

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'moat.js');
const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };

const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(async () => {
  await Promise.all([...children].map((c) => stop(c)));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'moat-cli-'));
  dirs.push(d);
  return d;
}

function moat(args: string[], options: { cwd?: string; input?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], { cwd: options.cwd ?? REPO, input: options.input, timeoutMs: 30_000 });
}

function curl(args: string[]): Promise<RunResult> {
  return run('curl', ['-sS', '--max-time', '15', ...args], { timeoutMs: 20_000 });
}

/** A port that was free a moment ago: bind port 0, read it, close. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A passive range of its own, away from the helper's 42000-49999. */
function pasvRange(): string {
  const base = 50_000 + Math.floor(Math.random() * 490) * 20;
  return `${base}-${base + 19}`;
}

interface Served {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawn `moat serve ...`; resolve once it says "Moat is serving" on stderr. */
async function serve(args: string[], cwd: string): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const deadline = Date.now() + 20_000;
  while (!/Moat is serving/.test(err)) {
    if (child.exitCode !== null) throw new Error(`moat serve exited ${child.exitCode}:\n${err}\n${out}`);
    if (Date.now() > deadline) throw new Error(`moat serve did not start:\n${err}\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** SIGTERM, then SIGKILL if it has not exited within 5 s. Resolves with the exit code. */
async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  const code = await exited;
  clearTimeout(timer);
  children.delete(child);
  return code;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('moat CLI: help and version', () => {
  test('moat --help lists serve, user and check-config', async () => {
    const r = await moat(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const c of ['serve', 'user', 'check-config']) assert.match(r.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), `lists ${c}`);
  });

  test('moat serve --help lists every flag of the issue', async () => {
    const r = await moat(['serve', '--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const flag of [
      '--config', '--listen', '--root', '--users', '--state-dir', '--pasv-ports', '--public-host',
      '--idle-timeout', '--no-active', '--no-passive', '--log-level',
    ]) {
      assert.match(r.stdout, new RegExp(`(^|[ ,])${flag}\\b`, 'm'), `serve --help lists ${flag}`);
    }
  });

  test('moat user add --help lists its flags; check-config --help takes --config', async () => {
    const add = await moat(['user', 'add', '--help']);
    assert.equal(add.code, 0, add.stderr);
    for (const flag of ['--home', '--perms', '--password-stdin', '--users']) assert.ok(add.stdout.includes(flag), `user add lists ${flag}`);
    const user = await moat(['user', '--help']);
    for (const sub of ['add', 'passwd', 'del', 'list', 'show']) assert.match(user.stdout, new RegExp(`^\\s+${sub}\\b`, 'm'));
    const check = await moat(['check-config', '--help']);
    assert.equal(check.code, 0);
    assert.ok(check.stdout.includes('--config'));
  });

  test('moat --version prints the package version', async () => {
    const r = await moat(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  test('bin/moat.js runs as an executable: its shebang starts Node with the small young generation', async () => {
    const bin = join(REPO, 'bin', 'moat.js');
    const r = await run(bin, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
    assert.match((await readFile(bin, 'utf8')).split('\n')[0]!, /^#!\/usr\/bin\/env -S node --max-semi-space-size=2$/);
  });
});

describe('moat CLI: check-config', () => {
  test('a listener that cannot be bound or a root that is a file: one clear line, exit 1, nothing left listening', async () => {
    const dir = await tempDir();
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const busyPort = (busy.address() as { port: number }).port;
      const free = await freePort();
      const common = ['--root', join(dir, 'root'), '--state-dir', join(dir, 'state'), '--pasv-ports', pasvRange()];
      const inUse = await moat(['serve', '--listen', `127.0.0.1:${busyPort}`, ...common]);
      assert.equal(inUse.code, 1, inUse.stderr);
      assert.match(inUse.stderr, new RegExp(`moat: cannot listen on 127\\.0\\.0\\.1:${busyPort}: address already in use`));
      assert.doesNotMatch(inUse.stdout + inUse.stderr, /uncaught/i);
      // The second listener is the busy one: the first must not stay open.
      const second = await moat(['serve', '--listen', `127.0.0.1:${free}`, '--listen', `127.0.0.1:${busyPort}`, ...common]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /address already in use/);
      assert.ok(await refusesConnections(free), 'the first listener was left open');
      const implicitBusy = await moat(['serve', '--listen', `127.0.0.1:${free}`, '--implicit-listen', `127.0.0.1:${busyPort}`, ...common]);
      assert.equal(implicitBusy.code, 1, implicitBusy.stderr);
      assert.match(implicitBusy.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busyPort}`));
      await writeFile(join(dir, 'a-file'), 'x');
      const fileRoot = await moat(['serve', '--listen', `127.0.0.1:${free}`, '--root', join(dir, 'a-file'), '--state-dir', join(dir, 'state')]);
      assert.equal(fileRoot.code, 1, fileRoot.stderr);
      assert.match(fileRoot.stderr, /^moat: root .*a-file is not a folder$/m);
      const logDir = await moat(['serve', '--listen', `127.0.0.1:${free}`, ...common, '--log-file', dir]);
      assert.equal(logDir.code, 1, logDir.stderr);
      assert.match(logDir.stderr, /moat: log_file .*: is a folder/);
      const logMissing = await moat(['serve', '--listen', `127.0.0.1:${free}`, ...common, '--log-file', join(dir, 'no', 'such', 'x.log')]);
      assert.equal(logMissing.code, 1, logMissing.stderr);
      assert.match(logMissing.stderr, /moat: log_file .*x\.log: its folder does not exist/);
      await assert.rejects(stat(join(dir, 'no')), 'no folder created for the log');
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  test('check-config refuses what serve would refuse: certificate, key, users file, log_file, a root or state_dir that is a file; serve says it in one line too', async () => {
    const dir = await tempDir();
    const common = ['--root', join(dir, 'root'), '--state-dir', join(dir, 'state')];
    await writeFile(join(dir, 'bad-users.json'), '{bad json');
    await writeFile(join(dir, 'not-pem.txt'), 'not a certificate');
    const cases: [string[], RegExp][] = [
      [['--tls-cert', join(dir, 'none.pem'), '--tls-key', join(dir, 'none.key')], /^moat: TLS: .*none\.pem/m],
      [['--tls-cert', join(dir, 'not-pem.txt'), '--tls-key', join(dir, 'not-pem.txt')], /^moat: TLS: /m],
      [['--users', join(dir, 'bad-users.json')], /^moat: .*bad-users\.json/m],
      [['--log-file', join(dir, 'no', 'such', 'x.log')], /^moat: log_file .*: its folder does not exist/m],
    ];
    await writeFile(join(dir, 'a-file'), 'x');
    for (const [key, flag] of [
      ['root', '--root'],
      ['state_dir', '--state-dir'],
    ]) {
      cases.push([[flag, join(dir, 'a-file')], new RegExp(`^moat: ${key} .*a-file is not a folder`, 'm')]);
      cases.push([[flag, join(dir, 'a-file', 'sub')], new RegExp(`^moat: ${key} .*a-file/sub: .*a-file is not a folder`, 'm')]);
    }
    for (const [flags, expected] of cases) {
      const r = await moat(['check-config', ...common, ...flags]);
      assert.equal(r.code, 1, `check-config ${flags.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.doesNotMatch(r.stdout, /configuration ok/);
    }
    const served = await moat(['serve', '--listen', `127.0.0.1:${await freePort()}`, ...common, '--pasv-ports', pasvRange(), '--users', join(dir, 'bad-users.json')]);
    assert.equal(served.code, 1, served.stderr);
    assert.match(served.stderr, /^moat: .*bad-users\.json.*JSON/m);
    assert.doesNotMatch(served.stderr, /^\s+at /m, 'no stack trace');
    const fileState = await moat(['serve', '--listen', `127.0.0.1:${await freePort()}`, ...common, '--pasv-ports', pasvRange(), '--state-dir', join(dir, 'a-file')]);
    assert.equal(fileState.code, 1, fileState.stderr);
    assert.match(fileState.stderr, /^moat: state_dir .*a-file is not a folder/m);
    const ok = await moat(['check-config', ...common, '--log-file', join(dir, 'new.log')]);
    assert.equal(ok.code, 0, ok.stderr);
    await assert.rejects(stat(join(dir, 'new.log')), 'check-config created the log file');
  });

  test('a bad value names the key and the reason; exit non-zero', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'bad.toml'), '[passive]\nports = "1-2"\n');
    const r = await moat(['check-config', '--config', 'bad.toml'], { cwd: dir });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /passive\.ports/);
    assert.doesNotMatch(r.stderr, /--pasv-ports/, 'a value from the file is named by its key alone');
    assert.match(r.stderr, /1024/, 'says why');
  });

  test('an unknown key is an error: "foo: unknown key"', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'bad.toml'), 'foo = 1\n');
    const r = await moat(['check-config', '--config', 'bad.toml'], { cwd: dir });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /foo: unknown key/);
    await writeFile(join(dir, 'nested.toml'), '[passive]\nportz = "40000-40100"\n');
    const nested = await moat(['check-config', '--config', 'nested.toml'], { cwd: dir });
    assert.notEqual(nested.code, 0);
    assert.match(nested.stderr, /passive\.portz: unknown key/);
  });

  test('a good file passes; a bad flag over it is reported by the flag and its key', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'good.toml'), 'root = "./data"\n[passive]\nports = "40000-40100"\n');
    const ok = await moat(['check-config', '--config', 'good.toml'], { cwd: dir });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration ok/);
    for (const odd of ['0x10', '1e3', '12abc']) {
      const r = await moat(['check-config', '--config', 'good.toml', '--idle-timeout', odd], { cwd: dir });
      assert.equal(r.code, 1, `--idle-timeout ${odd} was taken`);
      assert.match(r.stderr, /--idle-timeout \(timeouts\.idle\): expected a whole number of seconds/);
    }
    const bad = await moat(['check-config', '--config', 'good.toml', '--pasv-ports', '5000-4000'], { cwd: dir });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--pasv-ports \(passive\.ports\): expected MIN-MAX/);
    const policy = await moat(['check-config', '--config', 'good.toml', '--tls', 'maybe'], { cwd: dir });
    assert.equal(policy.code, 1);
    assert.match(policy.stderr, /--tls \(tls\.control\): .*"off"\|"optional"\|"required"/);
    const port = await moat(['check-config', '--config', 'good.toml', '--listen', '127.0.0.1:70000'], { cwd: dir });
    assert.equal(port.code, 1);
    assert.match(port.stderr, /--listen \(listen\.0\): .*a port up to 65535/);
    const missing = await moat(['check-config', '--config', 'missing.toml'], { cwd: dir });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /missing\.toml/);
  });
});

describe('moat CLI: the scripted start from flags only', () => {
  test('user add --password-stdin, then serve --listen --root --users --pasv-ports; curl logs in as alice', async () => {
    const dir = await tempDir();
    const password = 'alice-secret-pw';
    const add = await moat(['user', 'add', 'alice', '--password-stdin', '--users', './users'], { cwd: dir, input: `${password}\n` });
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added user "alice"/);
    const usersText = await readFile(join(dir, 'users'), 'utf8');
    assert.ok(!usersText.includes(password), 'the users file never holds the password');
    assert.match(usersText, /scrypt/i);

    const short = await moat(['user', 'add', 'carol', '--password-stdin', '--users', './users'], { cwd: dir, input: 'short\n' });
    assert.notEqual(short.code, 0, 'a password under 8 characters is refused');

    const root = join(dir, 'DIR');
    await mkdir(join(root, 'alice'), { recursive: true });
    await writeFile(join(root, 'alice', 'hello.txt'), 'hello from the CLI test\n');
    const port = await freePort();
    const s = await serve(['--listen', `127.0.0.1:${port}`, '--root', 'DIR', '--users', './users', '--pasv-ports', pasvRange()], dir);
    assert.ok(s.stderr().includes(`ftp://127.0.0.1:${port}`), s.stderr());
    assert.doesNotMatch(s.stderr(), /password:/, 'no demo user when a users file is given');

    const url = `ftp://127.0.0.1:${port}/`;
    const list = await curl(['--user', `alice:${password}`, '--list-only', url]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.split(/\r?\n/).filter(Boolean), ['hello.txt']);
    const get = await curl(['--user', `alice:${password}`, `${url}hello.txt`]);
    assert.equal(get.stdout, 'hello from the CLI test\n');
    const wrong = await curl(['--user', 'alice:not-the-password', url]);
    assert.equal(wrong.code, 67);

    // One JSON object per stdout line; a login event for alice; never the password.
    await waitFor(() => /"login"/.test(s.stdout()) && /"login-failed"/.test(s.stdout()), 'login log lines');
    const lines = s.stdout().split('\n').filter(Boolean);
    const records = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON log line: ${l}`);
      }
    });
    const login = records.find((r) => r.event === 'login' && r.user === 'alice');
    assert.ok(login, `a login event: ${lines.join('\n')}`);
    assert.equal(login.ip, '127.0.0.1');
    assert.ok(records.some((r) => r.event === 'login-failed'), 'the failed login is logged');
    assert.ok(!records.some((r) => r.event === 'weaker-option'), 'the scripted start weakens nothing');
    assert.ok(!s.stdout().includes(password), 'the password never reaches the log');
    assert.ok(!s.stdout().includes('not-the-password'), 'nor a wrong one');

    // A users file broken by hand while serving: logged, and the last good content still serves.
    await writeFile(join(dir, 'users'), usersText.slice(0, 20));
    await new Promise((r) => setTimeout(r, 1100));
    const still = await curl(['--user', `alice:${password}`, '--list-only', url]);
    assert.equal(still.code, 0, still.stderr);
    await waitFor(() => /"users-reload-failed"/.test(s.stdout()), 'users-reload-failed log line');

    // SIGUSR1 would open Node's debugger to any local user, SIGUSR2 and SIGHUP (no TLS here) would end the process.
    for (const signal of ['SIGUSR1', 'SIGUSR2', 'SIGHUP'] as const) s.child.kill(signal);
    await waitFor(() => (s.stdout().match(/"signal-ignored"/g) ?? []).length === 3, 'three signal-ignored lines');
    assert.ok(await refusesConnections(9229), 'no debugger listening');
    const after = await curl(['--user', `alice:${password}`, '--list-only', url]);
    assert.equal(after.code, 0, after.stderr);

    assert.equal(await stop(s.child), 0, 'SIGTERM ends the server cleanly');
  });
});

describe('moat CLI: zero-config start', () => {
  test('an empty folder: creates ./ftp-data and a demo user whose printed password works, once', async () => {
    const dir = await tempDir();
    const port = await freePort();
    const first = await serve(['--listen', `127.0.0.1:${port}`], dir);
    const m = /Created user "demo" with password: (\S+)/.exec(first.stderr());
    assert.ok(m, first.stderr());
    const password = m[1]!;
    assert.ok(password.length >= 12, 'a strong random password');
    assert.ok((await stat(join(dir, 'ftp-data'))).isDirectory(), './ftp-data created');
    const usersJson = await readFile(join(dir, '.moat', 'users.json'), 'utf8');
    assert.ok(usersJson.includes('demo') && !usersJson.includes(password), 'demo stored hashed in ./.moat/users.json');
    assert.match(first.stderr(), /curl/, 'says how to connect');
    assert.ok(!first.stdout().includes(password), 'the password is not in the log');

    const url = `ftp://127.0.0.1:${port}/`;
    await writeFile(join(dir, 'up.txt'), 'uploaded by demo\n');
    const up = await curl(['--user', `demo:${password}`, '-T', join(dir, 'up.txt'), `${url}up.txt`]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(await readFile(join(dir, 'ftp-data', 'up.txt'), 'utf8'), 'uploaded by demo\n');
    const list = await curl(['--user', `demo:${password}`, '--list-only', url]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.split(/\r?\n/).filter(Boolean), ['up.txt']);
    assert.equal(await stop(first.child), 0);

    // Second start in the same folder: the same user, no new password.
    const second = await serve(['--listen', `127.0.0.1:${port}`], dir);
    assert.doesNotMatch(second.stderr(), /password/i, second.stderr());
    const again = await curl(['--user', `demo:${password}`, '--list-only', url]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.stdout.split(/\r?\n/).filter(Boolean), ['up.txt']);
    assert.deepEqual((await readdir(join(dir, 'ftp-data'))).sort(), ['up.txt']);
    assert.equal(await stop(second.child), 0);
  });
});

describe('moat CLI: who', () => {
  test('moat who lists the live sessions (user, address, transfer) through the 0600 control socket, and says when no server runs', async () => {
    const dir = await tempDir();
    const password = 'alice-secret-pw';
    const add = await moat(['user', 'add', 'alice', '--password-stdin', '--users', './users', '--home', '.'], { cwd: dir, input: `${password}\n` });
    assert.equal(add.code, 0, add.stderr);
    await mkdir(join(dir, 'DIR'));
    await writeFile(join(dir, 'DIR', 'big.bin'), Buffer.alloc(64 * 1024 * 1024));
    const port = await freePort();
    const s = await serve(['--listen', `127.0.0.1:${port}`, '--root', 'DIR', '--users', './users', '--pasv-ports', pasvRange()], dir);
    const socketPath = join(dir, '.moat', 'moat.sock');
    assert.equal((await stat(socketPath)).mode & 0o777, 0o600, 'only the server\'s own user may ask');

    const empty = await moat(['who'], { cwd: dir });
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, 'no sessions\n');

    const anonymous = await RawClient.connect(port);
    assert.match(await anonymous.reply(), /^220 /);
    const alice = await RawClient.loggedIn(port, 'alice', password);
    assert.match(await alice.cmd('TYPE I'), /^200 /);
    const data = connect({ port: passivePort(await alice.cmd('EPSV')), host: '127.0.0.1' });
    data.on('error', () => undefined);
    data.pause();
    await new Promise((r) => data.once('connect', r));
    assert.match(await alice.cmd('RETR big.bin'), /^150 /);

    const table = await moat(['who'], { cwd: dir });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^SESSION\s+USER\s+FROM\s+TLS\s+FOR\s+IDLE\s+DOING$/);
    assert.equal(lines.length, 3, table.stdout);
    assert.match(table.stdout, /\n\S+\s+-\s+127\.0\.0\.1:\d+\s+no\s+\S+\s+\S+\s+logging in\n/);
    assert.match(table.stdout, /\n\S+\s+alice\s+127\.0\.0\.1:\d+\s+no\s+\S+\s+\S+\s+RETR \/big\.bin \(/);

    const json = await moat(['who', '--json'], { cwd: dir });
    const sessions = JSON.parse(json.stdout) as Array<{ user?: string; ip: string; tls: boolean; transfer?: { command: string; path: string; bytes: number } }>;
    assert.equal(sessions.length, 2);
    const busy = sessions.find((x) => x.user === 'alice')!;
    assert.deepEqual([busy.ip, busy.tls, busy.transfer?.command, busy.transfer?.path], ['127.0.0.1', false, 'RETR', '/big.bin']);
    assert.ok(busy.transfer!.bytes > 0, 'bytes sent so far are shown');

    // Anything but the known request gets an error, not a crash.
    const odd = await new Promise<string>((resolve, reject) => {
      const c = createConnection(socketPath);
      c.on('error', reject);
      let got = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => (got += d));
      c.on('close', () => resolve(got));
      c.write('x'.repeat(100));
    });
    assert.deepEqual(JSON.parse(odd), { error: 'unknown request' });

    data.destroy();
    anonymous.close();
    alice.close();
    assert.equal(await stop(s.child), 0);
    await assert.rejects(stat(socketPath), { code: 'ENOENT' }, 'the socket is removed on shutdown');
    const gone = await moat(['who'], { cwd: dir });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no running server/);
  });
});
