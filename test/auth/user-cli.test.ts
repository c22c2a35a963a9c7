import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { FileUserStore } from '../../src/auth/file-store.js';
import { CliError, registerUserCommands } from '../../src/cli/user.js';

const ctx = { remoteAddress: '127.0.0.1', secure: true };

let dir: string;
let n = 0;
const freshFile = () => join(dir, `users-${++n}.json`);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moat-user-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface RunResult {
  stdout: string;
  stderr: string;
  error?: Error;
}

/** Run `moat <args>` in process with the given stdin; the users file defaults to `usersFile`. */
async function run(args: string[], options: { usersFile?: string; stdin?: string; tty?: boolean } = {}): Promise<RunResult> {
  const result: RunResult = { stdout: '', stderr: '' };
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (options.tty) stdin.isTTY = true;
  stdin.end(options.stdin ?? '');
  const stdout = new PassThrough().on('data', (c) => (result.stdout += c));
  const stderr = new PassThrough().on('data', (c) => (result.stderr += c));
  const program = new Command('moat')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (result.stdout += s), writeErr: (s) => (result.stderr += s) });
  registerUserCommands(program, { usersFile: async () => options.usersFile ?? '' }, { stdin, stdout, stderr });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    result.error = err as Error;
  }
  return result;
}

function assertCliError(r: RunResult, pattern: RegExp): void {
  assert.ok(r.error instanceof CliError, `expected CliError, got ${r.error}`);
  assert.equal((r.error as CliError).exitCode, 1);
  assert.match(r.error.message, pattern);
}

describe('moat user (in process)', () => {
  it('add --password-stdin with defaults, then authenticate', async () => {
    const file = freshFile();
    const r = await run(['user', 'add', 'alice', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' });
    assert.equal(r.error, undefined);
    assert.match(r.stdout, /added user "alice" \(home "alice", permissions "elradfmwMT"\)/);
    const store = await FileUserStore.open(file);
    assert.deepEqual(await store.authenticate('alice', 'password-1', ctx), {
      name: 'alice',
      home: 'alice',
      permissions: 'elradfmwMT',
      enabled: true,
    });
  });

  it('add with --home, --perms, --disabled and --users; CRLF is stripped and only the first line read', async () => {
    const file = freshFile();
    const r = await run(
      ['user', 'add', 'cam1', '--home', 'cams/1/', '--perms', 'wl', '--disabled', '--password-stdin', '--users', file],
      { stdin: 'password-1\r\nsecond line\n' },
    );
    assert.equal(r.error, undefined);
    const store = await FileUserStore.open(file);
    assert.deepEqual(store.get('cam1'), { name: 'cam1', home: 'cams/1', permissions: 'lw', enabled: false });
    store.setEnabled('cam1', true);
    assert.ok(await store.authenticate('cam1', 'password-1', ctx));
    assert.doesNotMatch(r.stderr, /warning/);
  });

  it('add --perms "" is taken (a placeholder account) with a warning', async () => {
    const file = freshFile();
    const r = await run(['user', 'add', 'idle', '--perms', '', '--password-stdin', '--users', file], { stdin: 'password-1\n' });
    assert.equal(r.error, undefined);
    assert.match(r.stderr, /^moat: warning: "idle" has no permissions: .*--perms/m);
    assert.equal((await FileUserStore.open(file)).get('idle')?.permissions, '');
  });

  it('refuses bad homes, permissions, names and duplicates before reading a password', async () => {
    const file = freshFile();
    for (const [args, pattern] of [
      [['--home', '/srv/ftp'], /must be relative/],
      [['--home', 'a/../../etc'], /must not contain '\.\.'/],
      [['--home', ''], /--home is empty: give "\." for the whole server root/],
      [['--perms', 'elrX'], /unknown permission letter "X"/],
    ] as const) {
      const r = await run(['user', 'add', 'bob', ...args], { usersFile: file, stdin: 'password-1\n' });
      assertCliError(r, pattern);
    }
    assertCliError(await run(['user', 'add', '--password-stdin', '--', '-bob'], { usersFile: file, stdin: 'password-1\n' }), /invalid user name/);
    assertCliError(await run(['user', 'add', '.bob', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' }), /invalid user name/);
    assertCliError(await run(['user', 'add', 'Anonymous', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' }), /reserved for anonymous logins/);
    assertCliError(await run(['user', 'add', 'ftp', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' }), /reserved for anonymous logins/);
    await run(['user', 'add', 'bob', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' });
    assertCliError(await run(['user', 'add', 'bob'], { usersFile: file }), /already exists/);
  });

  it('password rules: empty refused, short refused unless --allow-weak-password', async () => {
    const file = freshFile();
    assertCliError(await run(['user', 'add', 'a', '--password-stdin'], { usersFile: file, stdin: '\n' }), /empty/);
    assertCliError(await run(['user', 'add', 'a', '--password-stdin'], { usersFile: file, stdin: '' }), /empty/);
    assertCliError(await run(['user', 'add', 'a', '--password-stdin'], { usersFile: file, stdin: 'short\n' }), /shorter than 8.*--allow-weak-password/);
    const r = await run(['user', 'add', 'a', '--password-stdin', '--allow-weak-password'], { usersFile: file, stdin: 'short\n' });
    assert.equal(r.error, undefined);
    assert.ok(await (await FileUserStore.open(file)).authenticate('a', 'short', ctx));
  });

  it('prompts twice on a terminal without echo; a mismatch is an error', async () => {
    const file = freshFile();
    const ok = await run(['user', 'add', 'alice'], { usersFile: file, tty: true, stdin: 'password-1\npassword-1\n' });
    assert.equal(ok.error, undefined);
    assert.match(ok.stderr, /Password: /);
    assert.match(ok.stderr, /Repeat password: /);
    assert.ok(!ok.stderr.includes('password-1'), 'the password is not echoed');
    assert.ok(!ok.stdout.includes('password-1'));
    assert.ok(await (await FileUserStore.open(file)).authenticate('alice', 'password-1', ctx));

    const bad = await run(['user', 'add', 'bob'], { usersFile: file, tty: true, stdin: 'password-1\npassword-2\n' });
    assertCliError(bad, /do not match/);
    const eof = await run(['user', 'add', 'bob'], { usersFile: file, tty: true, stdin: 'password-1\n' });
    assertCliError(eof, /cancelled/);
    assert.equal((await FileUserStore.open(file)).get('bob'), null);
  });

  it('without a terminal and without --password-stdin, fails with a clear message', async () => {
    const r = await run(['user', 'add', 'alice'], { usersFile: freshFile(), stdin: 'password-1\n' });
    assertCliError(r, /not a terminal.*--password-stdin/);
  });

  it('passwd, disable, enable, del', async () => {
    const file = freshFile();
    await run(['user', 'add', 'alice', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' });

    assert.equal((await run(['user', 'passwd', 'alice', '--password-stdin'], { usersFile: file, stdin: 'password-2\n' })).error, undefined);
    let store = await FileUserStore.open(file);
    assert.equal(await store.authenticate('alice', 'password-1', ctx), null);
    assert.ok(await store.authenticate('alice', 'password-2', ctx));

    assert.match((await run(['user', 'disable', 'alice'], { usersFile: file })).stdout, /disabled user "alice"/);
    assert.equal((await FileUserStore.open(file)).get('alice')?.enabled, false);
    assert.match((await run(['user', 'enable', 'alice'], { usersFile: file })).stdout, /enabled user "alice"/);
    assert.equal((await FileUserStore.open(file)).get('alice')?.enabled, true);

    assert.match((await run(['user', 'del', 'alice'], { usersFile: file })).stdout, /deleted user "alice"/);
    store = await FileUserStore.open(file);
    assert.deepEqual(store.list(), []);

    for (const verb of ['passwd', 'del', 'show', 'enable', 'disable']) {
      assertCliError(await run(['user', verb, 'nobody'], { usersFile: file, stdin: 'password-1\n' }), /no user "nobody"/);
    }
  });

  it('list and show, as text and JSON, never print the hash', async () => {
    const file = freshFile();
    await run(['user', 'add', 'alice', '--perms', 'elr', '--password-stdin'], { usersFile: file, stdin: 'password-1\n' });
    await run(['user', 'add', 'bob', '--home', '.', '--disabled', '--password-stdin'], { usersFile: file, stdin: 'password-2\n' });

    const list = await run(['user', 'list'], { usersFile: file });
    assert.match(list.stdout, /^NAME\s+ENABLED\s+PERMISSIONS\s+HOME\n/);
    assert.match(list.stdout, /alice\s+yes\s+elr\s+alice/);
    assert.match(list.stdout, /bob\s+no\s+elradfmwMT\s+\./);

    const listJson = JSON.parse((await run(['user', 'list', '--json'], { usersFile: file })).stdout);
    assert.deepEqual(listJson.map((u: { name: string }) => u.name), ['alice', 'bob']);

    const show = await run(['user', 'show', 'alice'], { usersFile: file });
    assert.match(show.stdout, /permissions:\s+elr/);
    assert.match(show.stdout, /\+ r  download files/);
    assert.match(show.stdout, /- w  upload files/);
    const showJson = JSON.parse((await run(['user', 'show', 'alice', '--json'], { usersFile: file })).stdout);
    assert.deepEqual(showJson, { name: 'alice', home: 'alice', permissions: 'elr', enabled: true });

    for (const out of [list.stdout, JSON.stringify(listJson), show.stdout, JSON.stringify(showJson)]) {
      assert.ok(!out.includes('scrypt'), out);
    }
    assert.match(await readFile(file, 'utf8'), /scrypt\$/);
    assert.match((await run(['user', 'list'], { usersFile: freshFile() })).stdout, /no users in /);
  });

  it('needs a users file from --users or the configuration', async () => {
    assertCliError(await run(['user', 'list']), /no users file: pass --users FILE/);
  });

  it('--help of each subcommand lists every flag', async () => {
    const expected: Record<string, string[]> = {
      add: ['--home', '--perms', '--disabled', '--password-stdin', '--allow-weak-password'],
      passwd: ['--password-stdin', '--allow-weak-password'],
      del: [],
      list: ['--json'],
      show: ['--json'],
      enable: [],
      disable: [],
    };
    for (const [verb, flags] of Object.entries(expected)) {
      const r = await run(['user', verb, '--help']);
      assert.ok(r.error instanceof CommanderError && r.error.code === 'commander.helpDisplayed');
      for (const flag of [...flags, '--users', '--config', '--state-dir']) assert.ok(r.stdout.includes(flag), `${verb} --help lacks ${flag}`);
    }
  });
});

describe('moat user (spawned)', () => {
  const entry = fileURLToPath(new URL('./user-cli-entry.ts', import.meta.url));

  const bin = fileURLToPath(new URL('../../bin/moat.js', import.meta.url));

  function spawnCli(args: string[], stdin: string, env: Record<string, string>, options: { real?: boolean; cwd?: string } = {}) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, options.real ? [bin, ...args] : ['--import', 'tsx', entry, ...args], {
        cwd: options.cwd,
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(stdin);
    });
  }

  it('pipes a password through --password-stdin, and reports errors as "moat: ..." with exit code 1', async () => {
    const file = freshFile();
    const env = { MOAT_USERS_FILE: file };
    const added = await spawnCli(['user', 'add', 'alice', '--password-stdin'], 'password-1\n', env);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added user "alice"/);
    assert.ok(await (await FileUserStore.open(file)).authenticate('alice', 'password-1', ctx));

    const dup = await spawnCli(['user', 'add', 'alice', '--password-stdin'], 'password-1\n', env);
    assert.equal(dup.code, 1);
    assert.equal(dup.stderr, `moat: user "alice" already exists in ${file}\n`);

    const noTty = await spawnCli(['user', 'passwd', 'alice'], '', env);
    assert.equal(noTty.code, 1);
    assert.match(noTty.stderr, /^moat: stdin is not a terminal/);
  });

  it('moat finds the users file as the server does: --users, else users_file of -c FILE, else <--state-dir>/users.json, else ./.moat', async () => {
    const work = await mkdtemp(join(dir, 'where-'));
    const inFile = join(work, 'configured-users.json');
    const config = join(work, 'moat.toml');
    await writeFile(config, `users_file = ${JSON.stringify(inFile)}\n`);
    const add = (name: string, ...where: string[]) => spawnCli(['user', 'add', name, '--password-stdin', ...where], 'password-1\n', {}, { real: true, cwd: work });
    for (const [name, where, file] of [
      ['viaconfig', ['-c', config], inFile],
      ['viastate', ['--state-dir', join(work, 'st')], join(work, 'st', 'users.json')],
      ['viadefault', [], join(work, '.moat', 'users.json')],
      ['viaflag', ['--users', join(work, 'u.json'), '-c', config], join(work, 'u.json')],
    ] as const) {
      const r = await add(name, ...where);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(resolve(work, /to (.*)\n$/.exec(r.stdout)?.[1] ?? ''), file);
      assert.ok((await FileUserStore.open(file)).get(name), `${name} in ${file}`);
    }
    const listed = await spawnCli(['user', 'list', '--config', config], '', {}, { real: true, cwd: work });
    assert.match(listed.stdout, /viaconfig/);
    const bad = await spawnCli(['user', 'list', '-c', join(work, 'missing.toml')], '', {}, { real: true, cwd: work });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^moat: invalid configuration:\n  .*missing\.toml: cannot read \(ENOENT\)/);
  });
});
