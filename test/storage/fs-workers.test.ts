import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { fsWorkers } from '../../src/storage/fs-workers.js';

let dir: string;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-statw-'));
  await fs.writeFile(path.join(dir, 'a.txt'), 'abc');
  await fs.mkdir(path.join(dir, 'sub'));
  await fs.symlink('/etc', path.join(dir, 'link'));
});

after(() => fs.rm(dir, { recursive: true, force: true }));

describe('fsWorkers', () => {
  it('answers in the order asked, with lstat data (links not followed), undefined for a vanished entry', async () => {
    const names = ['sub', 'gone', 'link', 'a.txt'];
    const got = await fsWorkers.lstat(dir, names);
    assert.equal(got.length, 4);
    assert.equal(got[0]?.kind, 'dir');
    assert.equal(got[1], undefined);
    assert.equal(got[2]?.kind, 'link');
    const lst = await fs.lstat(path.join(dir, 'a.txt'), { bigint: true });
    assert.deepEqual(got[3], {
      kind: 'file',
      size: 3,
      mtimeMs: Number(lst.mtimeMs),
      mode: Number(lst.mode),
      nlink: 1,
      dev: lst.dev,
      ino: lst.ino,
    });
    assert.deepEqual(await fsWorkers.lstat(dir, []), []);
  });

  it('gives the same figures as lstat for a FIFO and for a time before 1970 with a fraction of a millisecond', async () => {
    const extra = path.join(dir, 'sub');
    await promisify(execFile)('mkfifo', [path.join(extra, 'pipe')]);
    const old = path.join(extra, 'old.txt');
    await fs.writeFile(old, 'x');
    // Node's utimes takes a negative time as "now": touch sets 1969-12-31 23:59:58.4995.
    await promisify(execFile)('touch', ['-m', '-d', '@-1.5005', old]);
    const [pipe, oldInfo] = await fsWorkers.lstat(extra, ['pipe', 'old.txt']);
    assert.equal(pipe?.kind, 'other');
    const lst = await fs.lstat(old, { bigint: true });
    assert.equal(Number(lst.mtimeNs), -1_500_500_000, 'the time really is before 1970, with a fraction of a millisecond');
    assert.equal(oldInfo?.mtimeMs, Number(lst.mtimeMs));
    assert.equal(oldInfo?.mode, Number(lst.mode));
    assert.equal(oldInfo?.ino, lst.ino);
  });

  it('reads the names of a folder up to a limit, without hidden ones', async () => {
    await fs.writeFile(path.join(dir, '.moat-upload-1234.part'), '');
    const hidden = { prefix: '.moat-upload-', suffix: '.part' };
    try {
      assert.deepEqual((await fsWorkers.readNames(dir, Infinity, hidden)).sort(), ['a.txt', 'link', 'sub']);
      assert.equal((await fsWorkers.readNames(dir, 2, hidden)).length, 2);
      await assert.rejects(fsWorkers.readNames(path.join(dir, 'gone'), Infinity, hidden), { code: 'ENOENT' });
    } finally {
      await fs.rm(path.join(dir, '.moat-upload-1234.part'));
    }
  });

  it('reads a small file whole, and only reports what it finds otherwise', async () => {
    const whole = await fsWorkers.readSmall(path.join(dir, 'a.txt'), 1024);
    assert.deepEqual({ kind: whole.kind, size: whole.size, data: whole.data?.toString() }, { kind: 'file', size: 3, data: 'abc' });
    whole.release?.();
    assert.deepEqual(await fsWorkers.readSmall(path.join(dir, 'a.txt'), 2), { kind: 'file', size: 3 });
    assert.equal((await fsWorkers.readSmall(path.join(dir, 'sub'), 1024)).kind, 'dir');
    assert.equal((await fsWorkers.readSmall(path.join(dir, 'sub'), 1024)).data, undefined);
  });

  it('reads into slots of a shared slab, reused once released; past the last free slot, into buffers of their own', async () => {
    const files = await Promise.all(
      Array.from({ length: 70 }, async (_, i) => {
        const file = path.join(dir, 'sub', `small-${i}.bin`);
        await fs.writeFile(file, Buffer.alloc(1000 + i, i));
        return file;
      }),
    );
    const reads = await Promise.all(files.map((file) => fsWorkers.readSmall(file, 256 * 1024)));
    reads.forEach((r, i) => assert.ok(r.data?.equals(Buffer.alloc(1000 + i, i)), `file ${i} read back`));
    const inSlab = reads.filter((r) => r.release);
    assert.equal(inSlab.length, 64, 'every slot in use');
    assert.ok(inSlab.every((r) => r.data!.buffer instanceof SharedArrayBuffer));
    assert.ok(reads.filter((r) => !r.release).every((r) => !(r.data!.buffer instanceof SharedArrayBuffer)));
    for (const r of inSlab) {
      r.release!();
      r.release!();
    }
    const again = await Promise.all(files.slice(0, 64).map((file) => fsWorkers.readSmall(file, 256 * 1024)));
    assert.ok(again.every((r) => r.release), 'released slots are used again (and only once each)');
    again.forEach((r, i) => assert.ok(r.data?.equals(Buffer.alloc(1000 + i, i))));
    for (const r of again) r.release!();
    await Promise.all(files.map((file) => fs.rm(file)));
  });

  it('small reads wait for one lstat batch, not for a whole big listing, on either worker', async () => {
    const names = new Array<string>(40_000).fill('a.txt');
    let listed = false;
    const listing = fsWorkers.lstat(dir, names).then((r) => {
      listed = true;
      return r;
    });
    // One per worker (they take turns): the later one would come back only after the listing if it queued behind it.
    const reads = await Promise.all([0, 1].map(() => fsWorkers.readSmall(path.join(dir, 'a.txt'), 1024)));
    assert.equal(listed, false, 'both small reads came back while the listing was still running');
    for (const r of reads) r.release?.();
    assert.equal((await listing).length, 40_000);
  });

  it('never follows a link in last place and passes errno codes on', async () => {
    await assert.rejects(fsWorkers.readSmall(path.join(dir, 'link'), 1024), { code: 'ELOOP' });
    await assert.rejects(fsWorkers.readSmall(path.join(dir, 'gone'), 1024), { code: 'ENOENT' });
    await assert.rejects(fsWorkers.readSmall(path.join(dir, 'a.txt', 'x'), 1024), { code: 'ENOTDIR' });
  });

  it('never keeps the process alive once idle', async () => {
    const script = `
      import { fsWorkers } from ${JSON.stringify(path.resolve('src/storage/fs-workers.ts'))};
      const got = await fsWorkers.lstat(${JSON.stringify(dir)}, ['a.txt']);
      console.log(got[0].kind);
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 20_000,
    });
    assert.equal(stdout.trim(), 'file');
  });
});
