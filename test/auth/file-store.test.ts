import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileUserStore, normalizeHome, UsersFileError, UserStoreError } from '../../src/auth/file-store.js';
import { checkHome } from '../../src/config/values.js';
import { hashPassword, verifyPassword } from '../../src/auth/password.js';
import { VerifyCache } from '../../src/auth/verify-cache.js';

const ctx = { remoteAddress: '127.0.0.1', secure: true };

/** A verifier that counts scrypt runs, so cache behaviour is tested without clocks. */
function countingVerifier() {
  const counter = {
    calls: 0,
    verify: async (pw: string, encoded: string) => {
      counter.calls++;
      return verifyPassword(pw, encoded);
    },
  };
  return counter;
}

let dir: string;
let n = 0;
const freshFile = () => join(dir, `users-${++n}.json`);

/** A users file holding alice (password-1), and the store that wrote it (as `moat user` would). */
async function fileWithAlice(): Promise<{ file: string; cli: FileUserStore }> {
  const file = freshFile();
  const cli = await FileUserStore.open(file);
  await cli.add('alice', 'password-1');
  await cli.save();
  return { file, cli };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moat-auth-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileUserStore', () => {
  it('opens a missing file as an empty store and creates it (and its folder) on save', async () => {
    const file = join(dir, 'nested', 'deeper', 'users.json');
    const store = await FileUserStore.open(file);
    assert.deepEqual(store.list(), []);
    await store.add('alice', 'password-1');
    await store.save();
    const json = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(json.version, 1);
    assert.equal(json.users[0].name, 'alice');
    assert.equal(json.users[0].home, 'alice');
    assert.equal(json.users[0].permissions, 'elradfmwMT');
    assert.equal(json.users[0].enabled, true);
    assert.match(json.users[0].password, /^scrypt\$/);
  });

  it('authenticates the right password; unknown user, wrong password and disabled user are all null', async () => {
    const counter = countingVerifier();
    const file = freshFile();
    const store = await FileUserStore.open(file, { verify: counter.verify });
    await store.add('alice', 'password-1', { home: 'homes/alice', permissions: 'elr' });
    await store.add('bob', 'password-2', { enabled: false });

    const user = await store.authenticate('alice', 'password-1', ctx);
    assert.deepEqual(user, { name: 'alice', home: 'homes/alice', permissions: 'elr', enabled: true });
    assert.ok(!JSON.stringify(user).includes('scrypt'));

    assert.equal(await store.authenticate('alice', 'wrong', ctx), null);
    assert.equal(await store.authenticate('nobody', 'password-1', ctx), null);
    assert.equal(await store.authenticate('bob', 'password-2', ctx), null);
    assert.equal(await store.authenticate('bob', 'wrong', ctx), null);
    // Every attempt ran exactly one verification, including the unknown user
    // (dummy hash) and the disabled one: the same work whatever the reason.
    assert.equal(counter.calls, 5);
  });

  it('skips scrypt on a cache hit and stops hitting after setPassword', async () => {
    const counter = countingVerifier();
    const store = await FileUserStore.open(freshFile(), { verify: counter.verify, cache: new VerifyCache() });
    await store.add('alice', 'password-1');
    assert.ok(await store.authenticate('alice', 'password-1', ctx));
    assert.ok(await store.authenticate('alice', 'password-1', ctx));
    assert.ok(await store.authenticate('alice', 'password-1', ctx));
    assert.equal(counter.calls, 1);

    // A wrong password is never answered from the cache.
    assert.equal(await store.authenticate('alice', 'password-x', ctx), null);
    assert.equal(counter.calls, 2);

    await store.setPassword('alice', 'password-2');
    assert.equal(await store.authenticate('alice', 'password-1', ctx), null);
    assert.equal(counter.calls, 3);
    assert.ok(await store.authenticate('alice', 'password-2', ctx));
    assert.ok(await store.authenticate('alice', 'password-2', ctx));
    assert.equal(counter.calls, 4);
  });

  it('a disabled user is refused even with a cached verification', async () => {
    const store = await FileUserStore.open(freshFile());
    await store.add('alice', 'password-1');
    assert.ok(await store.authenticate('alice', 'password-1', ctx));
    store.setEnabled('alice', false);
    assert.equal(await store.authenticate('alice', 'password-1', ctx), null);
    assert.equal((await store.lookup('alice'))?.enabled, false);
    assert.equal(await store.lookup('nobody'), null);
  });

  it('writes the file with mode 0600, atomically by rename, leaving no temporary file', async () => {
    const file = freshFile();
    const store = await FileUserStore.open(file);
    await store.add('alice', 'password-1');
    await store.save();
    const first = await stat(file);
    assert.equal(first.mode & 0o777, 0o600);
    await store.add('bob', 'password-2');
    await store.save();
    const second = await stat(file);
    assert.equal(second.mode & 0o777, 0o600);
    // A new inode: the old file was replaced whole, not rewritten in place.
    assert.notEqual(second.ino, first.ino);
    const leftovers = (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });

  it('refuses to save over a file another process changed since it was read', async () => {
    const file = freshFile();
    const a = await FileUserStore.open(file);
    const b = await FileUserStore.open(file);
    await a.add('alice', 'password-1');
    await a.save();
    await b.add('bob', 'password-2');
    await assert.rejects(b.save(), (err: Error) => err instanceof UsersFileError && /changed by another process/.test(err.message));
    assert.deepEqual((await FileUserStore.open(file)).list().map((u) => u.name), ['alice']);
  });

  it('saves racing each other: every save that succeeds is in the file (the check and the rename are under one lock)', async () => {
    const file = freshFile();
    for (let round = 0; round < 5; round++) {
      const stores = await Promise.all(Array.from({ length: 8 }, () => FileUserStore.open(file)));
      await Promise.all(stores.map((s, i) => s.add(`r${round}u${i}`, 'password-1')));
      const results = await Promise.allSettled(stores.map((s) => s.save()));
      const saved = stores.filter((_, i) => results[i]!.status === 'fulfilled').length;
      const present = (await FileUserStore.open(file)).list().filter((u) => u.name.startsWith(`r${round}u`)).length;
      assert.ok(saved >= 1);
      assert.equal(present, saved, `round ${round}: ${saved} saves reported, ${present} users in the file`);
      for (const r of results) if (r.status === 'rejected') assert.match((r.reason as Error).message, /changed by another process/);
    }
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp')), []);
  });

  it('picks up changes saved by another process, at most once per interval, and drops stale cache entries', async () => {
    const { file, cli } = await fileWithAlice();

    let now = 0;
    const counter = countingVerifier();
    const server = await FileUserStore.open(file, { verify: counter.verify, now: () => now });
    assert.ok(await server.authenticate('alice', 'password-1', ctx));

    await cli.add('bob', 'password-2');
    await cli.setPassword('alice', 'password-3');
    await cli.save();

    now += 500; // within the interval: not re-read yet
    assert.equal(await server.authenticate('bob', 'password-2', ctx), null);
    now += 600;
    assert.ok(await server.authenticate('bob', 'password-2', ctx));
    assert.equal(await server.authenticate('alice', 'password-1', ctx), null);
    assert.ok(await server.authenticate('alice', 'password-3', ctx));

    cli.remove('bob');
    await cli.save();
    now += 1000;
    assert.equal(await server.lookup('bob'), null);
  });

  it('keeps the last valid users when the file becomes invalid, and reports it', async () => {
    const { file } = await fileWithAlice();
    let now = 0;
    const errors: Error[] = [];
    const server = await FileUserStore.open(file, { now: () => now, onReloadError: (e) => errors.push(e) });
    await writeFile(file, '{ "version": 1, "users": [ { "name": "alice" ');
    now += 1000;
    assert.ok(await server.authenticate('alice', 'password-1', ctx));
    now += 1000;
    assert.ok(await server.authenticate('alice', 'password-1', ctx));
    assert.equal(errors.length, 1, 'an invalid version is reported once');
    assert.match(errors[0]!.message, /not valid JSON/);
  });

  it('a file that cannot be read is reported once, and read again once it changes (chmod included)', async () => {
    const { file } = await fileWithAlice();
    let now = 0;
    const errors: Error[] = [];
    const server = await FileUserStore.open(file, { now: () => now, onReloadError: (e) => errors.push(e) });
    // Root reads any file whatever its mode: a folder in its place cannot be read by anyone.
    await rm(file);
    await mkdir(file);
    for (let i = 0; i < 3; i++) {
      now += 1000;
      assert.ok(await server.authenticate('alice', 'password-1', ctx), 'the previous content is kept');
    }
    assert.equal(errors.length, 1, errors.map((e) => e.message).join('; '));
    assert.match(errors[0]!.message, /cannot read users file/);
    await rm(file, { recursive: true });
    const fresh = await FileUserStore.open(file);
    await fresh.add('bob', 'password-2');
    await fresh.save();
    await chmod(file, 0o644);
    now += 1000;
    assert.ok(await server.lookup('bob'));
  });

  it('reports each new content it loads, and a file that is gone', async () => {
    const { file, cli } = await fileWithAlice();
    let now = 0;
    const loaded: [number, boolean][] = [];
    const server = await FileUserStore.open(file, { now: () => now, onReloaded: (n, missing) => loaded.push([n, missing]) });
    await cli.add('bob', 'password-2');
    await cli.save();
    now += 1000;
    assert.ok(await server.lookup('bob'));
    await rm(file);
    now += 1000;
    assert.equal(await server.lookup('alice'), null);
    now += 1000;
    await server.lookup('alice');
    assert.deepEqual(loaded, [
      [2, false],
      [0, true],
    ]);
  });

  it('names the user and field of an invalid entry', async () => {
    const file = freshFile();
    const good = await hashPassword('password-1');
    const write = (users: unknown[]) => writeFile(file, JSON.stringify({ version: 1, users }));
    const base = { name: 'alice', password: good, home: 'alice', permissions: 'elr', enabled: true };

    await write([base, { ...base, name: 'bob', permissions: 'elrz' }]);
    await assert.rejects(FileUserStore.open(file), (err: Error) => {
      assert.ok(err instanceof UsersFileError);
      assert.match(err.message, /users\[1\] \("bob"\)\.permissions: unknown permission letter "z"/);
      assert.ok(err.message.includes(file));
      return true;
    });

    await write([{ ...base, password: 'plaintext' }]);
    await assert.rejects(FileUserStore.open(file), /users\[0\] \("alice"\)\.password: expected an scrypt hash/);

    await write([{ ...base, home: '../etc' }]);
    await assert.rejects(FileUserStore.open(file), /users\[0\] \("alice"\)\.home: .*must not contain '\.\.'/);

    await write([{ ...base, tls_control: 'maybe' }]);
    await assert.rejects(FileUserStore.open(file), /users\[0\] \("alice"\)\.tls_control/);

    await write([{ ...base, allow_from: ['10.0.0.0/33'] }]);
    await assert.rejects(FileUserStore.open(file), /users\[0\] \("alice"\)\.allow_from\[0\]: expected an IP address or CIDR/);

    await write([{ ...base, pasword: 'typo' }]);
    await assert.rejects(FileUserStore.open(file), /users\[0\] \("alice"\).*pasword/);

    await write([{ ...base, name: '-alice' }]);
    await assert.rejects(FileUserStore.open(file), /users\[0\] \("-alice"\)\.name: invalid user name/);

    await write([base, base]);
    await assert.rejects(FileUserStore.open(file), /users\[1\]\.name: user "alice" appears twice/);

    await writeFile(file, JSON.stringify({ version: 2, users: [] }));
    await assert.rejects(FileUserStore.open(file), /version/);
  });

  it('reads optional per-user settings into camelCase fields', async () => {
    const file = freshFile();
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        users: [
          {
            name: 'cam.01@site',
            password: await hashPassword('password-1'),
            home: 'cams/01',
            permissions: 'w',
            enabled: true,
            tls_control: 'required',
            tls_data: 'required',
            tls_data_session: 'same-connection',
            allow_from: ['192.168.1.0/24', '::1'],
            deny_from: ['192.168.1.13'],
            max_sessions: 2,
          },
        ],
      }),
    );
    const store = await FileUserStore.open(file);
    assert.deepEqual(await store.lookup('cam.01@site'), {
      name: 'cam.01@site',
      home: 'cams/01',
      permissions: 'w',
      enabled: true,
      tlsControl: 'required',
      tlsData: 'required',
      tlsDataSession: 'same-connection',
      allowFrom: ['192.168.1.0/24', '::1'],
      denyFrom: ['192.168.1.13'],
      maxSessions: 2,
    });
  });

  it('management calls validate their input', async () => {
    const store = await FileUserStore.open(freshFile());
    await store.add('alice', 'password-1');
    await assert.rejects(store.add('alice', 'password-1'), /already exists/);
    await assert.rejects(store.add('.hidden', 'password-1'), UserStoreError);
    await assert.rejects(store.add('a'.repeat(65), 'password-1'), /invalid user name/);
    await assert.rejects(store.add('bob', 'password-1', { home: '/etc' }), /relative/);
    await assert.rejects(store.add('bob', 'password-1', { permissions: 'elrq' }), /unknown permission letter "q"/);
    await assert.rejects(store.setPassword('nobody', 'x'), /no user "nobody"/);
    assert.throws(() => store.remove('nobody'), /no user "nobody"/);
    assert.throws(() => store.setEnabled('nobody', true), /no user "nobody"/);
  });
});

describe('home folders', () => {
  it('accepts relative paths and normalizes their spelling', () => {
    assert.equal(normalizeHome('alice'), 'alice');
    assert.equal(normalizeHome('a//b/./c/'), 'a/b/c');
    assert.equal(normalizeHome('a\\b'), 'a/b');
    assert.equal(normalizeHome(''), '');
    assert.equal(normalizeHome('.'), '');
    assert.equal(normalizeHome('..foo/x..'), '..foo/x..');
  });

  it('refuses absolute paths, .. segments and control characters', () => {
    for (const bad of ['/srv', '\\srv', 'C:\\x', 'c:x', '..', 'a/../b', 'a\\..\\b', 'a/..', 'a\0b', 'a\nb']) {
      assert.notEqual(checkHome(bad), null, JSON.stringify(bad));
      assert.throws(() => normalizeHome(bad), UserStoreError);
    }
  });
});
