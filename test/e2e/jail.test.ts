import assert from 'node:assert/strict';
import { mkdir, readdir, readlink, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawClient } from '../helpers/clients.js';
import { PASSWORD, startServer, withServer, type TestServer } from '../helpers/server.js';

describe('the jail, through the protocol', () => {
  let t: TestServer;
  let c: RawClient;
  before(async () => {
    t = await startServer();
    // bob's home is root/bob; a sibling folder and a file outside the whole root.
    await mkdir(join(t.root, 'bob', 'inside'), { recursive: true });
    await mkdir(join(t.root, 'carol'));
    await writeFile(join(t.root, 'carol', 'private.txt'), 'carol only');
    await writeFile(join(t.dir, 'outside.txt'), 'outside the root');
    await symlink('/etc', join(t.root, 'bob', 'etc-link'));
    await symlink(join(t.root, 'carol'), join(t.root, 'bob', 'carol-link'));
    await symlink(join(t.root, 'bob', 'inside'), join(t.root, 'bob', 'ok-link'));
    c = await RawClient.connect(t.port);
    await c.reply();
    await c.login('bob');
  });
  after(async () => {
    c.close();
    await t.close();
  });

  const hostile = [
    '../carol/private.txt',
    '../../outside.txt',
    '/../../outside.txt',
    '..\\carol\\private.txt',
    '..\\..\\outside.txt',
    '%2e%2e/carol/private.txt',
    '%2e%2e%2fcarol%2fprivate.txt',
    '/etc/passwd',
    '....//carol/private.txt',
    'etc-link/passwd',
    'carol-link/private.txt',
  ];

  for (const path of hostile) {
    test(`SIZE and MDTM of ${JSON.stringify(path)} stay inside the home`, async () => {
      assert.match(await c.cmd(`SIZE ${path}`), /^550 /);
      assert.match(await c.cmd(`MDTM ${path}`), /^550 /);
    });
  }

  test('CWD cannot leave the home', async () => {
    assert.match(await c.cmd('CWD ..'), /^250 /);
    assert.match(await c.cmd('PWD'), /^257 "\/" /);
    assert.match(await c.cmd('CWD ../../..'), /^250 /);
    assert.match(await c.cmd('PWD'), /^257 "\/" /);
    assert.match(await c.cmd('CWD etc-link'), /^550 /);
    assert.match(await c.cmd('CWD carol-link'), /^550 /);
    assert.match(await c.cmd('CWD ok-link'), /^250 /);
    assert.match(await c.cmd('CWD /'), /^250 /);
  });

  test('NUL bytes are refused', async () => {
    c.write('SIZE ../carol\0/private.txt\r\n');
    assert.match(await c.reply(), /^501 /);
  });

  test('replies never reveal host paths', async () => {
    const replies = [await c.cmd('CWD etc-link'), await c.cmd('SIZE carol-link/private.txt'), await c.cmd('STAT etc-link')];
    for (const r of replies) assert.doesNotMatch(r, new RegExp(t.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.ok(t.eventsNamed('security').some((e) => e.event === 'jail-escape-refused'));
  });

  test('a read-only user can read but not write, delete, rename or mkdir', async () => {
    await writeFile(join(t.root, 'bob', 'mine.txt'), 'bob file');
    assert.match(await c.cmd('SIZE mine.txt'), /^213 8$/);
    assert.match(await c.cmd('DELE mine.txt'), /^550 /);
    assert.match(await c.cmd('RNFR mine.txt'), /^550 /);
    assert.match(await c.cmd('MKD new'), /^550 /);
    assert.match(await c.cmd('STOR new.txt'), /^550 /);
    assert.match(await c.cmd('APPE mine.txt'), /^550 /);
    assert.match(await c.cmd('SITE CHMOD 777 mine.txt'), /^550 /);
    assert.match(await c.cmd('MFMT 20200101000000 mine.txt'), /^550 /);
    assert.deepEqual((await readdir(join(t.root, 'bob'))).sort(), ['carol-link', 'etc-link', 'inside', 'mine.txt', 'ok-link']);
  });
});

describe('links in the home that lead out or nowhere, used by a client that can be banned', () => {
  test('are refused with 550 but never scored; MLST describes them, DELE and RNFR/RNTO act on the link itself', async () => {
    await withServer({ config: { guard: { never_ban: [], ban_threshold: 3 } } }, async (t) => {
      await mkdir(t.root, { recursive: true });
      await writeFile(join(t.root, 'target.txt'), 't');
      await symlink('target.txt', join(t.root, 'link.txt'));
      await symlink('/etc', join(t.root, 'etc-link'));
      await unlink(join(t.root, 'target.txt'));
      const c = await RawClient.loggedIn(t.port);
      // What a mirroring client does with the entries a listing showed it, several times over.
      for (let i = 0; i < 5; i++) {
        assert.match(await c.cmd('SIZE link.txt'), /^550 /);
        assert.match(await c.cmd('CWD etc-link'), /^550 /);
        assert.match(await c.cmd('SIZE etc-link/passwd'), /^550 /);
      }
      assert.match(await c.cmd('MLST link.txt'), /^250-[^]*type=OS\.unix=symlink;[^]*size=0;[^]*perm=df;[^]* \/link\.txt\r\n250 /);
      assert.match(await c.cmd('RNFR etc-link'), /^350 /);
      assert.match(await c.cmd('RNTO etc-link2'), /^250 /);
      assert.equal(await readlink(join(t.root, 'etc-link2')), '/etc');
      assert.match(await c.cmd('DELE link.txt'), /^250 /);
      assert.match(await c.cmd('DELE etc-link2'), /^250 /);
      assert.match(await c.cmd('NOOP'), /^200 /);
      assert.deepEqual(await readdir(t.root), []);
      assert.ok(t.eventsNamed('security').some((e) => e.event === 'jail-escape-refused'), 'the refusals are logged');
      assert.equal(t.eventsNamed('security').filter((e) => e.event === 'ban').length, 0);
      c.close();
    });
  });
});

describe('a home the server cannot use', () => {
  test('a home linked out of the root: 530 with the reason, a server-error, and no failed login to score', async () => {
    const t = await startServer();
    try {
      await mkdir(join(t.dir, 'outside'), { recursive: true });
      await mkdir(t.root, { recursive: true });
      await symlink(join(t.dir, 'outside'), join(t.root, 'evil'));
      await t.users.add('evil', PASSWORD, { home: 'evil', permissions: 'elr' });
      await t.users.save();
      const c = await RawClient.connect(t.port);
      await c.reply();
      assert.match(await c.cmd('USER evil'), /^331 /);
      assert.match(await c.cmd(`PASS ${PASSWORD}`), /^530 .*home folder unavailable/);
      assert.match(await c.cmd('USER alice'), /^331 /);
      assert.match(await c.cmd(`PASS ${PASSWORD}`), /^230 /);
      c.close();
      assert.equal(t.eventsNamed('login-failed').length, 0);
      assert.ok(t.eventsNamed('server-error').some((e) => /user evil/.test(e.where)));
      assert.equal(t.eventsNamed('session-error').length, 0);
    } finally {
      await t.close();
    }
  });
});
