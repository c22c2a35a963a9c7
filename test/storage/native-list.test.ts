import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { nativeList } from '../../src/storage/native-list.js';
import { nativeStatus } from '../../src/storage/native.js';
import { entryAt } from '../../src/storage/entry-table.js';
import { LocalStorage } from '../../src/storage/local.js';
import { ROOT } from '../../src/storage/vpath.js';
import { inTempDir } from '../helpers/files.js';

const HIDDEN = { prefix: '.moat-upload-', suffix: '.part' };
const KINDS = ['file', 'dir', 'link', 'other'];

/**
 * The native listing (native/list.c) against lstat itself: every figure of
 * every entry, for every kind of entry, with more entries than one thread
 * takes (so the second thread's share is checked too).
 */
describe('nativeList()', { skip: !nativeStatus().available && 'native helper not built' }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-native-list-'));
    for (let i = 0; i < 1500; i++) await fs.writeFile(path.join(dir, `f-${String(i).padStart(4, '0')}.txt`), 'x'.repeat(i % 17));
    await fs.mkdir(path.join(dir, 'sub dir'));
    await fs.symlink('f-0001.txt', path.join(dir, 'link'));
    await fs.symlink('/nowhere', path.join(dir, 'dangling'));
    await promisify(execFile)('mkfifo', [path.join(dir, 'pipe')]);
    await fs.writeFile(path.join(dir, 'é ü 名前.txt'), 'unicode');
    await fs.writeFile(path.join(dir, 'old.txt'), 'x');
    // Node's utimes takes a negative time as "now": touch sets 1969-12-31 23:59:58.4995.
    await promisify(execFile)('touch', ['-m', '-d', '@-1.5005', path.join(dir, 'old.txt')]);
    await fs.writeFile(path.join(dir, `${HIDDEN.prefix}1234${HIDDEN.suffix}`), 'an upload in progress');
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('lists every entry but upload temp files, sorted, each with the figures lstat gives', async () => {
    const { names, nums, uniques } = await nativeList(dir, Infinity, HIDDEN)!;
    const expected = (await fs.readdir(dir)).filter((n) => !n.startsWith(HIDDEN.prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(names, expected);
    assert.equal(names.length, 1506);
    for (let i = 0; i < names.length; i++) {
      const st = await fs.lstat(path.join(dir, names[i]!), { bigint: true });
      const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
      const at = i * 5;
      assert.deepEqual(
        [KINDS[nums[at]!], nums[at + 1], nums[at + 2], nums[at + 3], nums[at + 4], uniques[i]],
        [kind, Number(st.size), Number(st.mtimeMs), Number(st.mode), Number(st.nlink), `${st.dev.toString(16)}-${st.ino.toString(16)}`],
        names[i],
      );
    }
    assert.deepEqual(
      ['link', 'dangling', 'pipe', 'sub dir'].map((n) => KINDS[nums[names.indexOf(n) * 5]!]),
      ['link', 'link', 'other', 'dir'],
    );
    assert.equal(nums[names.indexOf('old.txt') * 5 + 2], -1500, 'before 1970: truncated toward zero, as lstat and Date');
  });

  it('stops at the limit, and fails with the errno of a folder it cannot open', async () => {
    assert.equal((await nativeList(dir, 10, HIDDEN)!).names.length, 10);
    await inTempDir(async (empty) => {
      assert.deepEqual(await nativeList(empty, Infinity, HIDDEN), { names: [], nums: new Float64Array(0), uniques: [] });
    });
    await assert.rejects(nativeList(path.join(dir, 'gone'), Infinity, HIDDEN)!, { code: 'ENOENT' });
    await assert.rejects(nativeList(path.join(dir, 'old.txt'), Infinity, HIDDEN)!, { code: 'ENOTDIR' });
    // The folder is a real path already checked against the jail: a link there now is refused, not followed.
    await fs.symlink(dir, path.join(dir, 'self'));
    try {
      await assert.rejects(nativeList(path.join(dir, 'self'), Infinity, HIDDEN)!, (e: NodeJS.ErrnoException) => e.code === 'ELOOP' || e.code === 'ENOTDIR');
    } finally {
      await fs.rm(path.join(dir, 'self'));
    }
  });

  it('LocalStorage.listTable: links resolved as list() resolves them (inside: the target; outside or dangling: the link, size hidden)', async () => {
    await inTempDir(async (home) => {
      await fs.writeFile(path.join(home, 'target.txt'), 'twelve bytes');
      await fs.symlink('target.txt', path.join(home, 'inside'));
      await fs.symlink('/etc/hostname', path.join(home, 'outside'));
      await fs.symlink('missing', path.join(home, 'dangling'));
      const storage = new LocalStorage(home);
      const table = await storage.listTable(ROOT);
      const rows = table.names.map((_, i) => entryAt(table, i)!);
      assert.deepEqual(rows, await storage.list(ROOT));
      const by = (name: string) => rows.find((r) => r.name === name)!;
      assert.deepEqual([by('inside').kind, by('inside').size], ['file', 12]);
      assert.deepEqual([by('outside').kind, by('outside').size], ['link', 0]);
      assert.deepEqual([by('dangling').kind, by('dangling').size], ['link', 0]);
    });
  });
});
