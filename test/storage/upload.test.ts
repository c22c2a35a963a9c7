import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { LocalStorage } from '../../src/storage/local.js';
import { type StorageErrorKind, type Upload } from '../../src/storage/types.js';
import { ROOT } from '../../src/storage/vpath.js';
import { rejectsWith as expectKind, v } from './helpers.js';
import { openFdsUnder } from '../helpers/fds.js';


let tmp: string;
let home: string;
let storage: LocalStorage;

async function rejectsWith(promise: Promise<unknown>, kind: StorageErrorKind): Promise<void> {
  await expectKind(promise, kind, tmp);
}

async function tempFiles(dir = home): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.startsWith('.moat-upload-'));
}

/** Resolves once the sink has handed `data` to the kernel. */
function writeFlushed(upload: Upload, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => upload.stream.write(data, (e) => (e ? reject(e) : resolve())));
}


before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-upload-'));
  home = path.join(tmp, 'home');
  await fs.mkdir(home);
  storage = new LocalStorage(home);
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('fresh STOR', () => {
  it('is invisible until commit, then appears atomically', async () => {
    const upload = await storage.write(v('a.txt'));
    await writeFlushed(upload, 'first part, ');
    await rejectsWith(storage.stat(v('a.txt')), 'not-found');
    const temps = await tempFiles();
    assert.equal(temps.length, 1);
    assert.match(temps[0]!, /^\.moat-upload-[0-9a-f]{16}\.part$/);
    assert.equal((await fs.stat(path.join(home, temps[0]!))).mode & 0o777, 0o644 & ~process.umask());
    assert.deepEqual(await storage.list(ROOT), [], 'temp files are hidden from listings');
    upload.stream.end('second part');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'a.txt'), 'utf8'), 'first part, second part');
    assert.deepEqual(await tempFiles(), []);
  });

  it('replaces an existing file only on commit', async () => {
    await fs.writeFile(path.join(home, 'b.txt'), 'old');
    const upload = await storage.write(v('b.txt'));
    await writeFlushed(upload, 'new content');
    assert.equal(await fs.readFile(path.join(home, 'b.txt'), 'utf8'), 'old');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'b.txt'), 'utf8'), 'new content');
  });

  it('exclusive (STOU): commits under a free name, but never replaces a file that appeared meanwhile', async () => {
    const free = await storage.write(v('u1.txt'), { exclusive: true });
    await writeFlushed(free, 'mine');
    await free.commit();
    assert.equal(await fs.readFile(path.join(home, 'u1.txt'), 'utf8'), 'mine');

    const late = await storage.write(v('u2.txt'), { exclusive: true });
    await writeFlushed(late, 'mine');
    await fs.writeFile(path.join(home, 'u2.txt'), 'someone else');
    await rejectsWith(late.commit(), 'exists');
    assert.equal(await fs.readFile(path.join(home, 'u2.txt'), 'utf8'), 'someone else');
    assert.deepEqual(await tempFiles(), []);
  });

  it('abort leaves neither the file nor the temp file', async () => {
    const upload = await storage.write(v('c.txt'));
    await writeFlushed(upload, 'doomed');
    await upload.abort();
    await upload.abort(); // idempotent
    await rejectsWith(storage.stat(v('c.txt')), 'not-found');
    assert.deepEqual(await tempFiles(), []);
    await rejectsWith(upload.commit(), 'io');
  });

  it('a destroyed stream cleans up on its own', async () => {
    const upload = await storage.write(v('d.txt'));
    await writeFlushed(upload, 'client vanished');
    const closed = new Promise((resolve) => upload.stream.once('close', resolve));
    upload.stream.destroy();
    await closed;
    await upload.abort();
    assert.deepEqual(await tempFiles(), []);
    await rejectsWith(storage.stat(v('d.txt')), 'not-found');
  });

  it('two concurrent uploads to one name: both complete, one wins, no temp left', async () => {
    const a = randomBytes(3 * 1024 * 1024);
    const b = randomBytes(3 * 1024 * 1024);
    const [ua, ub] = await Promise.all([storage.write(v('race.bin')), storage.write(v('race.bin'))]);
    await Promise.all([
      pipeline(Readable.from([a.subarray(0, 1e6), a.subarray(1e6)]), ua.stream),
      pipeline(Readable.from([b.subarray(0, 1e6), b.subarray(1e6)]), ub.stream),
    ]);
    await Promise.all([ua.commit(), ub.commit()]);
    const final = await fs.readFile(path.join(home, 'race.bin'));
    assert.ok(final.equals(a) || final.equals(b), 'the final file is one whole upload');
    assert.deepEqual(await tempFiles(), []);
  });

  it('refuses directories and missing parents', async () => {
    await fs.mkdir(path.join(home, 'dir'));
    await rejectsWith(storage.write(v('dir')), 'is-a-directory');
    await rejectsWith(storage.write(v('no/such/file')), 'not-found');
    await rejectsWith(storage.write(v('a.txt/x')), 'not-a-directory');
  });
});

describe('REST + STOR', () => {
  it('writes from the offset and drops the old tail on commit', async () => {
    await fs.writeFile(path.join(home, 'r.txt'), 'abcdefghij');
    const upload = await storage.write(v('r.txt'), { offset: 3 });
    upload.stream.end('XY');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'r.txt'), 'utf8'), 'abcXY');
  });

  it('continues a partial file exactly at its end', async () => {
    await fs.writeFile(path.join(home, 'part.txt'), 'hello ');
    const upload = await storage.write(v('part.txt'), { offset: 6 });
    upload.stream.end('world');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'part.txt'), 'utf8'), 'hello world');
    assert.deepEqual(await tempFiles(), []);
  });

  it('refuses an offset past the end, or on a missing file', async () => {
    await fs.writeFile(path.join(home, 'short.txt'), '12345');
    await rejectsWith(storage.write(v('short.txt'), { offset: 6 }), 'past-end');
    await rejectsWith(storage.write(v('missing.txt'), { offset: 1 }), 'past-end');
    await rejectsWith(storage.write(v('short.txt'), { offset: -1 }), 'invalid-path');
    await rejectsWith(storage.write(v('short.txt'), { offset: 1.5 }), 'invalid-path');
  });

  it('offset 0 is a plain STOR', async () => {
    await fs.writeFile(path.join(home, 'zero.txt'), 'long old content');
    const upload = await storage.write(v('zero.txt'), { offset: 0 });
    upload.stream.end('new');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'zero.txt'), 'utf8'), 'new');
  });

  it('abort keeps what was written and cuts the file after it, as a completed resume does (no stale tail)', async () => {
    await fs.writeFile(path.join(home, 'keep.txt'), '0123456789');
    const upload = await storage.write(v('keep.txt'), { offset: 2 });
    await writeFlushed(upload, 'ab');
    await upload.abort();
    assert.equal(await fs.readFile(path.join(home, 'keep.txt'), 'utf8'), '01ab');
  });
});

describe('APPE', () => {
  it('appends to an existing file', async () => {
    await fs.writeFile(path.join(home, 'app.txt'), 'abc');
    const upload = await storage.write(v('app.txt'), { append: true });
    upload.stream.write('de');
    upload.stream.end('f');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'app.txt'), 'utf8'), 'abcdef');
  });

  it('creates a missing file, and ignores an offset', async () => {
    const upload = await storage.write(v('new-app.txt'), { append: true, offset: 99 });
    upload.stream.end('xyz');
    await upload.commit();
    assert.equal(await fs.readFile(path.join(home, 'new-app.txt'), 'utf8'), 'xyz');
  });
});

describe('file descriptors', () => {
  it('none are left open on any path', async () => {
    await fs.writeFile(path.join(home, 'fd.txt'), 'fd test content');
    const before = await openFdsUnder(tmp);
    for (let i = 0; i < 20; i++) {
      const fresh = await storage.write(v(`fd-${i}.txt`));
      fresh.stream.end('x');
      await fresh.commit();
      const aborted = await storage.write(v('fd-aborted.txt'));
      await writeFlushed(aborted, 'x');
      await aborted.abort();
      const destroyed = await storage.write(v('fd.txt'), { offset: 3 });
      const closed = new Promise((resolve) => destroyed.stream.once('close', resolve));
      destroyed.stream.destroy(new Error('connection reset'));
      await closed;
      await rejectsWith(destroyed.commit(), 'io');
      await rejectsWith(storage.write(v('fd.txt'), { offset: 1000 }), 'past-end');
      const appended = await storage.write(v('fd.txt'), { append: true });
      await appended.abort();
      const { stream: reader } = await storage.read(v('fd.txt'));
      for await (const chunk of reader) void chunk;
      const { stream: unread } = await storage.read(v('fd.txt'));
      const unreadClosed = new Promise((resolve) => unread.once('close', resolve));
      unread.destroy();
      await unreadClosed;
      await rejectsWith(storage.read(v('dir')), 'is-a-directory');
    }
    assert.equal(await openFdsUnder(tmp), before);
    assert.deepEqual(await tempFiles(), []);
  });
});
