import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { epsvConnection, RawClient } from '../helpers/clients.js';
import { PASSWORD, withServer } from '../helpers/server.js';
import { ConfigError, createServer, FileUserStore } from '../../src/index.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeCert } from '../tls/helpers.js';
import { StorageError, type FileInfo, type StorageErrorKind, type VirtualPath } from '../../src/storage/types.js';

describe('a server with one data mode switched off', () => {
  for (const [mode, gone, kept] of [
    ['passive', 'EPSV', 'EPRT'],
    ['active', 'EPRT', 'EPSV'],
  ] as const) {
    test(`${mode} off: FEAT offers no ${gone}; EPSV ALL is refused when passive is off (the session keeps PORT/EPRT)`, async () => {
      await withServer({ config: { [mode]: { enabled: false } } }, async (t) => {
        const c = await RawClient.loggedIn(t.port);
        const feat = await c.cmd('FEAT');
        assert.doesNotMatch(feat, new RegExp(`^ ${gone}$`, 'm'));
        assert.match(feat, new RegExp(`^ ${kept}$`, 'm'));
        if (mode === 'passive') {
          assert.match(await c.cmd('EPSV ALL'), /^502 /);
          assert.match(await c.cmd('EPRT |1|127.0.0.1|40000|'), /^200 /);
        }
        c.close();
      });
    });
  }
});

describe('limits.listing_max_entries', () => {
  test('a listing cut at the limit says so in its final reply and logs listing-truncated', async () => {
    await withServer({ config: { limits: { listing_max_entries: 10 } } }, async (t) => {
      await mkdir(join(t.root, 'many'), { recursive: true });
      await mkdir(join(t.root, 'few'), { recursive: true });
      await mkdir(join(t.root, 'exact'), { recursive: true });
      for (let i = 0; i < 30; i++) await writeFile(join(t.root, 'many', `f${i}`), 'x');
      for (let i = 0; i < 3; i++) await writeFile(join(t.root, 'few', `f${i}`), 'x');
      for (let i = 0; i < 10; i++) await writeFile(join(t.root, 'exact', `f${i}`), 'x');
      const c = await RawClient.loggedIn(t.port);
      const lines = (data: Buffer) => data.toString().split('\r\n').filter(Boolean);
      for (const command of ['NLST many', 'MLSD many', 'LIST many']) {
        const { data, done } = await c.fetchWithReply(command);
        assert.match(done, /^226 .*truncated to 10 entries/, command);
        assert.equal(lines(data).length, 10, command);
      }
      // A folder that holds exactly the limit was read whole: nothing was cut.
      for (const command of ['NLST exact', 'MLSD exact', 'LIST exact']) {
        const { data, done } = await c.fetchWithReply(command);
        assert.doesNotMatch(done, /truncated/, command);
        assert.deepEqual(lines(data).map((l) => l.split(/[ ;]/).pop()).sort(), Array.from({ length: 10 }, (_, i) => `f${i}`).sort(), command);
      }
      assert.doesNotMatch(await c.cmd('STAT exact'), /truncated/);
      assert.match(await c.cmd('STAT many'), /^213 End of status; output truncated to 10 entries/m);
      assert.doesNotMatch(await c.cmd('STAT few'), /truncated/);
      assert.ok(t.eventsNamed('security').some((e) => e.event === 'listing-truncated' && /\/many/.test(String(e.detail))));
      assert.ok(!t.eventsNamed('security').some((e) => e.event === 'listing-truncated' && /\/exact/.test(String(e.detail))));
      c.close();
    });
  });
});

describe('what the log keeps of a refused line', () => {
  test('a password sent as a line of its own, or glued to PASS, never reaches an event', async () => {
    await withServer({}, async (t) => {
      const c = await RawClient.connect(t.port);
      await c.reply();
      assert.match(await c.cmd('USER alice'), /^331 /);
      for (const line of ['hunter-SECRET2', 'PASShunter-SECRET2', 'PASS\thunter-SECRET3']) assert.match(await c.cmd(line), /^500 /);
      assert.match(await c.cmd(`PASS ${PASSWORD}`), /^230 /);
      c.close();
      const refused = t.eventsNamed('refused');
      assert.equal(refused.filter((e) => e.command === '?' && e.reason === 'malformed verb').length, 3);
      assert.doesNotMatch(JSON.stringify(t.events), /secret/i);
    });
  });

  test('a word a client tries (checksum extensions, or a password that is one word) is not scored; a known extension verb is logged by name', async () => {
    await withServer({}, async (t) => {
      // Not 127.0.0.1, which guard.never_ban covers by default.
      const c = await RawClient.connect(t.port, '127.0.0.1', '127.0.0.7');
      await c.reply();
      await c.login();
      for (let i = 0; i < 12; i++) {
        assert.match(await c.cmd('XSHA256 file.txt'), /^502 /);
        assert.match(await c.cmd('MD5 file.txt'), /^502 /);
      }
      assert.match(await c.cmd('hunterSECRET4'), /^500 /);
      assert.match(await c.cmd('NOOP'), /^200 /, 'still served: nothing was scored');
      c.close();
      assert.equal(t.server.guard.isBanned('127.0.0.7'), false);
      const refused = t.eventsNamed('refused');
      assert.equal(refused.filter((e) => e.command === 'XSHA256' && e.code === 502).length, 12);
      assert.ok(refused.some((e) => e.command === '?' && e.reason === 'unknown command'));
      assert.doesNotMatch(JSON.stringify(t.events), /secret/i);
    });
  });
});

/** An embedder's storage that throws a StorageError of a kind this version does not know. */
class OddErrors extends LocalStorage {
  override async stat(vpath: VirtualPath): Promise<FileInfo> {
    if (vpath === '/odd') throw new StorageError('quota-of-tomorrow' as StorageErrorKind, 'a kind from a newer storage');
    return super.stat(vpath);
  }
}

describe('a storage error of an unknown kind', () => {
  test('is a 451 for that command, logged with its kind; the session goes on', async () => {
    let root = '';
    await withServer({ parts: { storage: async () => new OddErrors(root) } }, async (t) => {
      root = t.root;
      const c = await RawClient.loggedIn(t.port);
      assert.match(await c.cmd('SIZE odd'), /^451 /);
      assert.match(await c.cmd('NOOP'), /^200 /);
      assert.ok(t.eventsNamed('refused').some((e) => e.command === 'SIZE' && /quota-of-tomorrow/.test(e.reason)));
      c.close();
    });
  });
});

describe('REST before a transfer command that is refused', () => {
  test('the offset is spent by the refusal (as in vsftpd): the next RETR starts at 0, STOU is not refused for it', async () => {
    await withServer({}, async (t) => {
      await mkdir(join(t.root, 'bob'), { recursive: true });
      await writeFile(join(t.root, 'bob', 'file.txt'), 'hello');
      await t.users.add('carol', PASSWORD, { home: 'bob', permissions: 'elrw' });
      await t.users.save();
      const bob = await RawClient.loggedIn(t.port, 'bob');
      assert.match(await bob.cmd('REST 2'), /^350 /);
      assert.match(await bob.cmd('STOR x.txt'), /^550 /);
      assert.equal((await bob.fetch('RETR file.txt')).toString(), 'hello');
      assert.match(await bob.cmd('REST 2'), /^350 /);
      assert.match(await bob.cmd('RETR missing.txt'), /^550 /);
      assert.equal((await bob.fetch('RETR file.txt')).toString(), 'hello');
      bob.close();
      const carol = await RawClient.loggedIn(t.port, 'carol');
      assert.match(await carol.cmd('REST 3'), /^350 /);
      assert.match(await carol.cmd('APPE file.txt'), /^550 /);
      const data = await epsvConnection(carol);
      assert.match(await carol.cmd('STOU'), /^150 /);
      data.end('new');
      assert.match(await carol.reply(), /^226 /);
      carol.close();
    });
  });
});

describe('a user store that hands over a disabled user', () => {
  test('the login is refused all the same (530, login-failed "user disabled")', async () => {
    await withServer({ config: { guard: { failed_login_delay_ms: 0 } } }, async (t) => {
      const authenticate = t.users.authenticate.bind(t.users);
      t.users.authenticate = async (name, password, ctx) => {
        const user = await authenticate(name, password, ctx);
        return user && { ...user, enabled: false };
      };
      const c = await RawClient.connect(t.port);
      await c.reply();
      assert.match(await c.cmd('USER alice'), /^331 /);
      assert.match(await c.cmd(`PASS ${PASSWORD}`), /^530 /);
      assert.deepEqual(t.eventsNamed('login-failed').map((e) => e.reason), ['user disabled']);
      assert.equal(t.eventsNamed('login').length, 0);
      c.close();
    });
  });
});

describe('the library: listen() twice', () => {
  test('the second call throws and the server keeps serving', async () => {
    await withServer({}, async (t) => {
      await assert.rejects(t.server.listen(), /already called/);
      const c = await RawClient.loggedIn(t.port);
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
    });
  });
});

describe('the library: what createServer does not do', () => {
  test('listen() after close() throws instead of turning every client away', async () => {
    const server = createServer({ users: await FileUserStore.open(join(tmpdir(), 'moat-no-such-users.json')), config: { listen: ['127.0.0.1:0'], root: tmpdir() } });
    await server.close();
    await assert.rejects(server.listen(), /after close/);
  });

  test('keys only moat serve acts on (TLS, run_as, users_file) are refused, each by name, never ignored', async () => {
    const { certFile, keyFile, dir } = makeCert();
    const users = await FileUserStore.open(join(dir, 'users.json'));
    try {
      const refused = (config: Record<string, unknown>) => {
        try {
          createServer({ users, config: { root: tmpdir(), ...config } });
        } catch (error) {
          assert.ok(error instanceof ConfigError);
          return error.problems;
        }
        assert.fail(`accepted: ${JSON.stringify(config)}`);
      };
      // Before, this server answered plain logins although TLS was required.
      assert.match(refused({ tls: { cert: certFile, key: keyFile, control: 'required' } }).join('\n'), /^tls: createServer serves plain FTP only/);
      assert.match(refused({ run_as: 'nobody' }).join('\n'), /^run_as: /);
      assert.match(refused({ users_file: join(dir, 'users.json') }).join('\n'), /^users_file: /);
      assert.doesNotThrow(() => createServer({ users, config: { root: tmpdir() } }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('permission letters that other commands must not get around', () => {
  test('STAT <path> lists, so it needs l; RNTO onto an existing entry replaces it, so it needs d', async () => {
    await withServer({}, async (t) => {
      const home = join(t.root, 'shared');
      await mkdir(join(home, 'sub'), { recursive: true });
      await mkdir(join(home, 'empty-a'));
      await mkdir(join(home, 'empty-b'));
      await writeFile(join(home, 'keep.txt'), 'keep');
      await writeFile(join(home, 'other.txt'), 'other');
      await t.users.add('nolist', PASSWORD, { home: 'shared', permissions: 'erw' });
      await t.users.add('nodelete', PASSWORD, { home: 'shared', permissions: 'elrfw' });
      await t.users.add('full', PASSWORD, { home: 'shared', permissions: 'elrdfw' });
      await t.users.save();

      const nolist = await RawClient.loggedIn(t.port, 'nolist');
      for (const path of ['/', 'sub', 'keep.txt', '-la .']) assert.match(await nolist.cmd(`STAT ${path}`), /^550 Permission denied/, `STAT ${path}`);
      assert.match(await nolist.cmd('STAT'), /^211-/, 'the server status needs no permission');
      nolist.close();

      const nodelete = await RawClient.loggedIn(t.port, 'nodelete');
      assert.match(await nodelete.cmd('RNFR other.txt'), /^350 /);
      assert.match(await nodelete.cmd('RNTO keep.txt'), /^550 Permission denied/);
      assert.match(await nodelete.cmd('RNFR empty-a'), /^350 /);
      assert.match(await nodelete.cmd('RNTO empty-b'), /^550 Permission denied/);
      assert.match(await nodelete.cmd('RNFR other.txt'), /^350 /);
      assert.match(await nodelete.cmd('RNTO new-name.txt'), /^250 /, 'a rename to a free name needs no d');
      assert.match(await nodelete.cmd('RNFR new-name.txt'), /^350 /);
      assert.match(await nodelete.cmd('RNTO new-name.txt'), /^250 /, 'onto itself replaces nothing');
      assert.match(await nodelete.cmd('STAT sub'), /^213-/);
      nodelete.close();
      assert.equal(await readFile(join(home, 'keep.txt'), 'utf8'), 'keep');
      assert.ok((await stat(join(home, 'empty-b'))).isDirectory());
      assert.ok(t.eventsNamed('refused').some((e) => e.code === 550 && /missing permission d/.test(String(e.reason))));

      const full = await RawClient.loggedIn(t.port, 'full');
      assert.match(await full.cmd('RNFR new-name.txt'), /^350 /);
      assert.match(await full.cmd('RNTO keep.txt'), /^250 /, 'with d the target is replaced, as before');
      full.close();
      assert.equal(await readFile(join(home, 'keep.txt'), 'utf8'), 'other');
    });
  });
});
