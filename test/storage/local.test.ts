import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { toStorageError } from '../../src/storage/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { StorageError, type StorageErrorKind } from '../../src/storage/types.js';
import { ROOT } from '../../src/storage/vpath.js';
import { rejectsWith as expectKind, v, writeFiles } from './helpers.js';

const GiB = 1024 ** 3;

let tmp: string;
let home: string;
let storage: LocalStorage;

async function rejectsWith(promise: Promise<unknown>, kind: StorageErrorKind): Promise<void> {
  await expectKind(promise, kind, tmp);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-local-'));
  home = path.join(tmp, 'home');
  await fs.mkdir(home);
  storage = new LocalStorage(home);
  await fs.writeFile(path.join(home, 'file.txt'), 'hello');
  await fs.mkdir(path.join(home, 'full'));
  await fs.writeFile(path.join(home, 'full', 'x'), '');
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('stat and list', () => {
  it('stat returns FileInfo', async () => {
    const info = await storage.stat(v('file.txt'));
    const st = await fs.stat(path.join(home, 'file.txt'), { bigint: true });
    assert.deepEqual(info, {
      name: 'file.txt',
      kind: 'file',
      size: 5,
      mtime: st.mtime,
      mode: Number(st.mode) & 0o777,
      unique: `${st.dev.toString(16)}-${st.ino.toString(16)}`,
      nlink: 1,
    });
    assert.equal((await storage.stat(ROOT)).name, '/');
  });

  it('list returns sorted entries without . and ..', async () => {
    const names = (await storage.list(ROOT)).map((i) => i.name);
    assert.deepEqual(names, ['file.txt', 'full']);
    await rejectsWith(storage.list(v('file.txt')), 'not-a-directory');
    await rejectsWith(storage.list(v('nope')), 'not-found');
  });

  it('lists 10,000 entries, honours limit, and keeps the event loop turning', async () => {
    const big = path.join(home, 'big');
    await fs.mkdir(big);
    await writeFiles(big, 10_000, 'f', 5, '');
    let turns = 0;
    const ticker = setInterval(() => turns++, 1);
    const all = await storage.list(v('big'));
    clearInterval(ticker);
    assert.equal(all.length, 10_000);
    assert.equal(new Set(all.map((i) => i.unique)).size, 10_000);
    assert.equal(all[0]!.name, 'f00000');
    assert.ok(turns > 0, 'timers ran while listing');
    assert.equal((await storage.list(v('big'), { limit: 100 })).length, 100);
    assert.equal((await storage.list(v('big'), { limit: 0 })).length, 0);
    assert.equal((await storage.list(v('big'), { limit: 20_000 })).length, 10_000);
    await fs.rm(big, { recursive: true });
  });
});

describe('files past 4 GiB', () => {
  it('a 5 GiB sparse file has an exact size and reads from 4.5 GiB', async () => {
    const file = path.join(home, 'sparse.bin');
    await fs.writeFile(file, '');
    await fs.truncate(file, 5 * GiB);
    const marker = Buffer.from('MOAT-MARKER-4.5GiB');
    const fh = await fs.open(file, 'r+');
    await fh.write(marker, 0, marker.length, 4.5 * GiB);
    await fh.close();

    assert.equal((await storage.stat(v('sparse.bin'))).size, 5368709120);
    const listed = (await storage.list(ROOT)).find((i) => i.name === 'sparse.bin');
    assert.equal(listed?.size, 5368709120);

    const { size, stream } = await storage.read(v('sparse.bin'), { start: 4.5 * GiB });
    assert.equal(size, 5368709120);
    const first = await new Promise<Buffer>((resolve) => stream.once('data', (c: Buffer) => resolve(c)));
    stream.destroy();
    assert.deepEqual(first.subarray(0, marker.length), marker);
    assert.ok(first.length > 64 * 1024, 'reads in large chunks');

    const tail = await readAll((await storage.read(v('sparse.bin'), { start: 5 * GiB - 4 })).stream);
    assert.equal(tail.length, 4);
  });

  it('resumes a write at an offset past 4 GiB', async () => {
    const offset = 4.5 * GiB + 100;
    const upload = await storage.write(v('sparse.bin'), { offset });
    upload.stream.end('resumed');
    await upload.commit();
    assert.equal((await storage.stat(v('sparse.bin'))).size, offset + 'resumed'.length);
    const back = await readAll((await storage.read(v('sparse.bin'), { start: offset })).stream);
    assert.equal(back.toString(), 'resumed');
    await storage.delete(v('sparse.bin'));
  });

  it('refuses a bad start', async () => {
    await rejectsWith(storage.read(v('file.txt'), { start: -1 }), 'invalid-path');
  });
});

describe('directory and file operations', () => {
  it('rmdir of a folder holding only upload parts a crash left (untouched for an hour) removes them; a fresh part (busy: an upload in progress) or another file keeps it', async () => {
    await storage.mkdir(v('crashed'));
    const part = path.join(home, 'crashed', '.moat-upload-0123456789abcdef.part');
    await fs.writeFile(part, 'half');
    await rejectsWith(storage.rmdir(v('crashed')), 'busy');
    const old = new Date(Date.now() - 2 * 3600_000);
    await fs.utimes(part, old, old);
    await fs.writeFile(path.join(home, 'crashed', 'keep.txt'), 'x');
    await rejectsWith(storage.rmdir(v('crashed')), 'not-empty');
    assert.ok(await fs.stat(part), 'a part beside a real file is left alone');
    await storage.delete(v('crashed/keep.txt'));
    await storage.rmdir(v('crashed'));
    await rejectsWith(storage.stat(v('crashed')), 'not-found');
  });

  it('mkdir, rmdir, delete, rename', async () => {
    await storage.mkdir(v('made'));
    assert.equal((await storage.stat(v('made'))).kind, 'dir');
    await rejectsWith(storage.mkdir(v('made')), 'exists');
    await rejectsWith(storage.mkdir(v('no/such/dir')), 'not-found');
    await rejectsWith(storage.rmdir(v('full')), 'not-empty');
    await rejectsWith(storage.rmdir(v('file.txt')), 'not-a-directory');
    await rejectsWith(storage.delete(v('made')), 'is-a-directory');
    await rejectsWith(storage.delete(v('nope')), 'not-found');

    await storage.rename(v('made'), v('moved'));
    await rejectsWith(storage.stat(v('made')), 'not-found');
    await rejectsWith(storage.rename(v('made'), v('again')), 'not-found');
    await storage.rmdir(v('moved'));

    await fs.writeFile(path.join(home, 'tmp.txt'), 'x');
    await storage.rename(v('tmp.txt'), v('full/tmp.txt'));
    await storage.delete(v('full/tmp.txt'));
    await rejectsWith(storage.stat(v('full/tmp.txt')), 'not-found');
  });

  it('read refuses directories and missing files', async () => {
    await rejectsWith(storage.read(v('full')), 'is-a-directory');
    await rejectsWith(storage.read(v('nope')), 'not-found');
    await rejectsWith(storage.read(v('file.txt/x')), 'not-a-directory');
    assert.equal((await readAll((await storage.read(v('file.txt'), { start: 1 })).stream)).toString(), 'ello');
    const atEnd = await storage.read(v('file.txt'), { start: 5 });
    assert.equal(atEnd.size, 5);
    assert.equal((await readAll(atEnd.stream)).length, 0);
    const pastEnd = await storage.read(v('file.txt'), { start: 9 });
    assert.equal(pastEnd.size, 5);
    assert.equal((await readAll(pastEnd.stream)).length, 0);
  });

  it('read refuses a FIFO at once (never waits for a writer) and a file past the small-file size streams whole', async () => {
    await promisify(execFile)('mkfifo', [path.join(home, 'pipe')]);
    try {
      await rejectsWith(storage.read(v('pipe')), 'permission');
    } finally {
      await fs.rm(path.join(home, 'pipe'));
    }
    const big = Buffer.alloc(300 * 1024, 7);
    await fs.writeFile(path.join(home, 'big.bin'), big);
    const download = await storage.read(v('big.bin'), { start: 10 });
    assert.equal(download.size, big.length);
    assert.equal((await readAll(download.stream)).length, big.length - 10);
    await fs.rm(path.join(home, 'big.bin'));
  });

  it('chmod keeps only permission bits', async () => {
    await storage.chmod(v('file.txt'), 0o104755);
    assert.equal((await fs.stat(path.join(home, 'file.txt'))).mode & 0o7777, 0o755);
    await storage.chmod(v('file.txt'), 0o644);
    assert.equal((await storage.stat(v('file.txt'))).mode, 0o644);
  });

  it('setMtime changes mtime and keeps atime', async () => {
    const file = path.join(home, 'file.txt');
    const atime = new Date('2020-01-02T03:04:05Z');
    await fs.utimes(file, atime, new Date());
    const mtime = new Date('2001-02-03T04:05:06.789Z');
    await storage.setMtime(v('file.txt'), mtime);
    const st = await fs.stat(file);
    assert.equal(st.mtime.getTime(), mtime.getTime());
    assert.equal(st.atime.getTime(), atime.getTime());
    await rejectsWith(storage.setMtime(v('file.txt'), new Date(NaN)), 'invalid-path');
  });

  it('available reports free bytes', async () => {
    const free = await storage.available(ROOT);
    const st = await fs.statfs(home);
    assert.ok(free > 0);
    assert.ok(Math.abs(free - st.bavail * st.bsize) < 64 * 1024 * 1024);
  });
});

describe('errno mapping', () => {
  const cases: [string, StorageErrorKind][] = [
    ['ENOENT', 'not-found'],
    ['EEXIST', 'exists'],
    ['ENOTDIR', 'not-a-directory'],
    ['EISDIR', 'is-a-directory'],
    ['ENOTEMPTY', 'not-empty'],
    ['EACCES', 'permission'],
    ['EPERM', 'permission'],
    ['ENOSPC', 'no-space'],
    ['EDQUOT', 'quota'],
    ['EIO', 'io'],
    ['EXDEV', 'io'],
  ];
  for (const [code, kind] of cases) {
    it(`${code} -> ${kind}`, () => {
      const raw = Object.assign(new Error(`${code}: failed, open '${tmp}/secret'`), { code });
      const mapped = toStorageError(raw);
      assert.equal(mapped.kind, kind);
      assert.equal(mapped.cause, raw);
      assert.ok(!mapped.message.includes(tmp));
    });
  }

  it('unknown failures are io, StorageErrors pass through', () => {
    assert.equal(toStorageError(new TypeError('boom')).kind, 'io');
    assert.equal(toStorageError(null).kind, 'io');
    const original = new StorageError('quota', 'over quota');
    assert.equal(toStorageError(original), original);
  });

  it('real fs errors carry no host path in the message', async () => {
    const raw = await fs.readFile(path.join(home, 'nope')).catch((e: unknown) => e);
    const mapped = toStorageError(raw);
    assert.equal(mapped.kind, 'not-found');
    assert.ok(!mapped.message.includes(tmp));
  });
});
