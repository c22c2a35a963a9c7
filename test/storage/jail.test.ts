import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalStorage } from '../../src/storage/local.js';
import { StorageError, type StorageErrorKind, type VirtualPath } from '../../src/storage/types.js';
import { ROOT } from '../../src/storage/vpath.js';
import { rejectsWith as expectKind, v, writeFiles } from './helpers.js';


let tmp: string;
let root: string;
let home: string;
let storage: LocalStorage;
const seenMessages: string[] = [];

/** Asserts the kind and records the message, checked for host paths at the end. */
async function rejectsWith(promise: Promise<unknown>, kind: StorageErrorKind): Promise<void> {
  seenMessages.push(await expectKind(promise, kind));
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-jail-'));
  root = path.join(tmp, 'root');
  storage = await LocalStorage.create(root, 'alice');
  home = path.join(root, 'alice');
  await fs.mkdir(path.join(root, 'bob'));
  await fs.writeFile(path.join(root, 'bob', 'secret.txt'), 'bob secret');
  await fs.mkdir(path.join(home, 'sub'));
  await fs.writeFile(path.join(home, 'sub', 'f.txt'), 'inside');
  await fs.writeFile(path.join(home, 'file.txt'), 'hello');
  await fs.symlink('/etc', path.join(home, 'toetc'));
  await fs.symlink('../bob', path.join(home, 'tobob'));
  await fs.symlink('../bob/secret.txt', path.join(home, 'bobsecret'));
  await fs.symlink('sub', path.join(home, 'inner'));
  await fs.symlink('sub/f.txt', path.join(home, 'innerfile'));
  await fs.symlink('/nonexistent-moat-target', path.join(home, 'dangling'));
});

after(async () => {
  for (const message of seenMessages) {
    assert.ok(!message.includes(tmp), `error message leaks a host path: ${message}`);
    assert.ok(!message.includes('/etc'), `error message leaks a host path: ${message}`);
  }
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('hostile client paths', () => {
  it('cannot climb above the home with ..', async () => {
    assert.equal(v('../../etc/passwd'), '/etc/passwd');
    await rejectsWith(storage.stat(v('../../etc/passwd')), 'not-found');
    assert.equal(v('/../..'), '/');
    const info = await storage.stat(v('/../..'));
    assert.equal(info.kind, 'dir');
  });

  it('treats backslashes as separators', async () => {
    assert.equal(v('..\\..\\etc'), '/etc');
    await rejectsWith(storage.stat(v('..\\..\\etc')), 'not-found');
  });

  it('does not decode percent-encodings', async () => {
    assert.equal(v('%2e%2e/%2e%2e/etc'), '/%2e%2e/%2e%2e/etc');
    await rejectsWith(storage.stat(v('%2e%2e/%2e%2e/etc')), 'not-found');
  });

  it('refuses NUL, CR and LF in names', () => {
    for (const bad of ['a\0b', 'evil\r\nDELE x', 'x\n', '/etc/passwd\0.txt']) {
      assert.throws(
        () => v(bad),
        (e: unknown) => e instanceof StorageError && e.kind === 'invalid-path',
      );
    }
  });

  it('maps absolute paths inside the home', async () => {
    await rejectsWith(storage.stat(v('/etc/passwd')), 'not-found');
    await fs.mkdir(path.join(home, 'etc'));
    await fs.writeFile(path.join(home, 'etc', 'passwd'), 'not the real one');
    const info = await storage.stat(v('/etc/passwd'));
    assert.equal(info.size, 'not the real one'.length);
    await fs.rm(path.join(home, 'etc'), { recursive: true });
  });

  it('rechecks forged virtual paths', async () => {
    for (const forged of ['/a/../../bob', 'relative', '/./x']) {
      await rejectsWith(storage.stat(forged as VirtualPath), 'invalid-path');
    }
  });

  it('reserves the temporary upload names', async () => {
    await rejectsWith(storage.stat(v('/.moat-upload-0123.part')), 'invalid-path');
    await rejectsWith(storage.write(v('/.moat-upload-x.part')), 'invalid-path');
  });
});

/** stat() of a link that leads out describes the link itself, as listings do. */
async function isLink(name: string): Promise<void> {
  const info = await storage.stat(v(name));
  assert.equal(info.kind, 'link');
  assert.equal(info.size, 0);
  const lst = await fs.lstat(path.join(home, name), { bigint: true });
  assert.equal(info.unique, `${lst.dev.toString(16)}-${lst.ino.toString(16)}`);
}

describe('symlinks pointing outside the home', () => {
  for (const link of ['toetc', 'tobob']) {
    it(`${link}: refused for every operation through it; described as a link`, async () => {
      const inner = link === 'toetc' ? 'passwd' : 'secret.txt';
      await isLink(link);
      await rejectsWith(storage.stat(v(`${link}/${inner}`)), 'outside-jail');
      await rejectsWith(storage.stat(v(`${link}/no-such/deeper`)), 'outside-jail');
      await rejectsWith(storage.list(v(link)), 'outside-jail');
      await rejectsWith(storage.read(v(`${link}/${inner}`)), 'outside-jail');
      await rejectsWith(storage.write(v(`${link}/new.txt`)), 'outside-jail');
      await rejectsWith(storage.write(v(`${link}/${inner}`), { append: true }), 'outside-jail');
      await rejectsWith(storage.write(v(link)), 'outside-jail');
      await rejectsWith(storage.mkdir(v(`${link}/sub`)), 'outside-jail');
      await rejectsWith(storage.rename(v('file.txt'), v(`${link}/stolen.txt`)), 'outside-jail');
      await rejectsWith(storage.rename(v(`${link}/${inner}`), v('taken.txt')), 'outside-jail');
      await rejectsWith(storage.delete(v(`${link}/${inner}`)), 'outside-jail');
      await rejectsWith(storage.rmdir(v(link)), 'outside-jail');
      await rejectsWith(storage.chmod(v(`${link}/${inner}`), 0o777), 'outside-jail');
      await rejectsWith(storage.setMtime(v(`${link}/${inner}`), new Date(0)), 'outside-jail');
      await rejectsWith(storage.available(v(link)), 'outside-jail');
    });
  }

  it('a link to a file outside is refused', async () => {
    await isLink('bobsecret');
    await rejectsWith(storage.read(v('bobsecret')), 'outside-jail');
    await rejectsWith(storage.write(v('bobsecret'), { offset: 1 }), 'outside-jail');
  });

  it('a dangling link is refused, as its target cannot be proved inside', async () => {
    await isLink('dangling');
    await rejectsWith(storage.read(v('dangling')), 'outside-jail');
    await rejectsWith(storage.write(v('dangling'), { append: true }), 'outside-jail');
    await rejectsWith(storage.stat(v('dangling/x')), 'outside-jail');
  });

  it('such links are deleted and renamed as themselves, their targets untouched', async () => {
    for (const [name, target] of [['out-a', '../bob/secret.txt'], ['out-b', '/nonexistent-moat-target'], ['out-c', '/etc']] as const) {
      await fs.symlink(target, path.join(home, name));
    }
    await storage.rename(v('out-a'), v('out-a2'));
    assert.equal(await fs.readlink(path.join(home, 'out-a2')), '../bob/secret.txt');
    await storage.delete(v('out-a2'));
    await storage.delete(v('out-b'));
    await fs.writeFile(path.join(home, 'over.txt'), 'over');
    // RNTO onto such a link replaces the link, never writes where it points.
    await storage.rename(v('over.txt'), v('out-c'));
    assert.equal(await fs.readFile(path.join(home, 'out-c'), 'utf8'), 'over');
    await storage.delete(v('out-c'));
    for (const name of ['out-a', 'out-a2', 'out-b', 'out-c']) await assert.rejects(fs.lstat(path.join(home, name)), name);
  });

  it('left everything outside untouched', async () => {
    assert.deepEqual(await fs.readdir(path.join(root, 'bob')), ['secret.txt']);
    assert.equal(await fs.readFile(path.join(root, 'bob', 'secret.txt'), 'utf8'), 'bob secret');
    assert.equal(await fs.readFile(path.join(home, 'file.txt'), 'utf8'), 'hello');
    assert.equal((await fs.lstat(path.join(home, 'toetc'))).isSymbolicLink(), true);
  });

  it('listings show them as links with no target metadata', async () => {
    const byName = new Map((await storage.list(ROOT)).map((i) => [i.name, i]));
    for (const name of ['toetc', 'tobob', 'bobsecret', 'dangling']) {
      const info = byName.get(name);
      assert.ok(info, name);
      assert.equal(info.kind, 'link');
      assert.equal(info.size, 0);
      const lst = await fs.lstat(path.join(home, name), { bigint: true });
      assert.equal(info.unique, `${lst.dev.toString(16)}-${lst.ino.toString(16)}`);
    }
  });
});

describe('links among thousands of plain entries', () => {
  it('are each resolved or masked exactly as in a small folder', async () => {
    const mixed = path.join(home, 'mixed');
    await fs.mkdir(mixed);
    await writeFiles(mixed, 3_000, 'f', 4, 'x');
    await fs.symlink('/etc/passwd', path.join(mixed, 'f1000-out'));
    await fs.symlink('../../bob/secret.txt', path.join(mixed, 'f2000-bob'));
    await fs.symlink('nowhere', path.join(mixed, 'f2500-dangling'));
    await fs.symlink('../sub/f.txt', path.join(mixed, 'f2999-in'));
    const listed = await storage.list(v('mixed'));
    assert.equal(listed.length, 3_004);
    assert.deepEqual(
      listed.map((i) => i.name),
      listed.map((i) => i.name).sort(),
    );
    const byName = new Map(listed.map((i) => [i.name, i]));
    for (const name of ['f1000-out', 'f2000-bob', 'f2500-dangling']) {
      const info = byName.get(name)!;
      assert.equal(info.kind, 'link', name);
      assert.equal(info.size, 0, name);
      const lst = await fs.lstat(path.join(mixed, name), { bigint: true });
      assert.equal(info.unique, `${lst.dev.toString(16)}-${lst.ino.toString(16)}`, name);
    }
    const inside = byName.get('f2999-in')!;
    assert.equal(inside.kind, 'file');
    assert.equal(inside.size, 'inside'.length);
    assert.equal(byName.get('f0000')?.kind, 'file');
    await fs.rm(mixed, { recursive: true });
  });
});

describe('symlinks pointing inside the home', () => {
  it('are followed', async () => {
    assert.equal((await storage.stat(v('inner'))).kind, 'dir');
    assert.deepEqual((await storage.list(v('inner'))).map((i) => i.name), ['f.txt']);
    const info = await storage.stat(v('innerfile'));
    assert.equal(info.kind, 'file');
    assert.equal(info.name, 'innerfile');
    const chunks: Buffer[] = [];
    for await (const chunk of (await storage.read(v('inner/f.txt'))).stream) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'inside');
    // A link in last place is never opened by the small-file worker (O_NOFOLLOW): it is resolved in the jail.
    const viaLink: Buffer[] = [];
    for await (const chunk of (await storage.read(v('innerfile'))).stream) viaLink.push(chunk as Buffer);
    assert.equal(Buffer.concat(viaLink).toString(), 'inside');
  });

  it('are listed as what they point to', async () => {
    const byName = new Map((await storage.list(ROOT)).map((i) => [i.name, i]));
    assert.equal(byName.get('inner')?.kind, 'dir');
    assert.equal(byName.get('innerfile')?.kind, 'file');
    assert.equal(byName.get('innerfile')?.size, 'inside'.length);
  });

  it('writes go through to the target', async () => {
    const upload = await storage.write(v('innerfile'), { append: true });
    upload.stream.end('+more');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'sub', 'f.txt'), 'utf8'), 'inside+more');
    assert.equal((await fs.lstat(path.join(home, 'innerfile'))).isSymbolicLink(), true);
  });

  it('delete removes the link, not its target', async () => {
    await fs.symlink('sub/f.txt', path.join(home, 'tmplink'));
    await storage.delete(v('tmplink'));
    await rejectsWith(storage.stat(v('tmplink')), 'not-found');
    assert.ok((await storage.stat(v('sub/f.txt'))).size > 0);
  });
});

describe('the home itself', () => {
  it('cannot be deleted or renamed', async () => {
    await rejectsWith(storage.delete(ROOT), 'permission');
    await rejectsWith(storage.rmdir(ROOT), 'permission');
    await rejectsWith(storage.rename(ROOT, v('elsewhere')), 'permission');
    await rejectsWith(storage.rename(v('file.txt'), ROOT), 'permission');
    await rejectsWith(storage.write(ROOT), 'is-a-directory');
  });
});

describe('LocalStorage.create', () => {
  it('refuses a home that escapes the root', async () => {
    await rejectsWith(LocalStorage.create(root, '../escape'), 'outside-jail');
    await rejectsWith(LocalStorage.create(root, 'a/../../escape'), 'outside-jail');
    await fs.symlink(tmp, path.join(root, 'sneaky'));
    await rejectsWith(LocalStorage.create(root, 'sneaky'), 'outside-jail');
  });

  it('creates nested homes and accepts an existing one', async () => {
    const s = await LocalStorage.create(root, '/users/carol/');
    assert.equal((await fs.stat(path.join(root, 'users', 'carol'))).isDirectory(), true);
    assert.deepEqual(await s.list(ROOT), []);
    await LocalStorage.create(root, 'users/carol');
  });

  it('needs absolute host paths', () => {
    assert.throws(() => new LocalStorage('relative/home'), TypeError);
  });
});
