import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { statWorkers } from '../../src/storage/stat-workers.js';

let dir: string;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-statw-'));
  await fs.writeFile(path.join(dir, 'a.txt'), 'abc');
  await fs.mkdir(path.join(dir, 'sub'));
  await fs.symlink('/etc', path.join(dir, 'link'));
});

after(() => fs.rm(dir, { recursive: true, force: true }));

describe('statWorkers', () => {
  it('answers in the order asked, with lstat data (links not followed), undefined for a vanished entry', async () => {
    const names = ['sub', 'gone', 'link', 'a.txt'];
    const got = await statWorkers.lstat(dir, names);
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
    assert.deepEqual(await statWorkers.lstat(dir, []), []);
  });

  it('never keeps the process alive once idle', async () => {
    const script = `
      import { statWorkers } from ${JSON.stringify(path.resolve('src/storage/stat-workers.ts'))};
      const got = await statWorkers.lstat(${JSON.stringify(dir)}, ['a.txt']);
      console.log(got[0].kind);
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 20_000,
    });
    assert.equal(stdout.trim(), 'file');
  });
});
