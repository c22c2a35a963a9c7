import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { lsLineFormatter, mlsxFormatter, mlsxPermByKind, safeName } from '../../src/listing/format.js';
import { nativeLines, type NativeLinesOptions } from '../../src/listing/native-lines.js';
import { entryAt } from '../../src/storage/entry-table.js';
import { LocalStorage } from '../../src/storage/local.js';
import { nativeStatus } from '../../src/storage/native.js';
import { ROOT } from '../../src/storage/vpath.js';
import type { EntryTable, FileInfo, VirtualPath } from '../../src/storage/types.js';

const run = promisify(execFile);
const NOW = new Date('2026-11-23T12:00:00.000Z');
const SIX_MONTHS_MS = (365.2425 * 24 * 60 * 60 * 1000) / 2;
const HOUR_MS = 60 * 60 * 1000;

/** The JavaScript formatter's bytes for the same listing: what the native lines must equal. */
function jsLines(table: EntryTable, o: NativeLinesOptions): string {
  const format =
    o.format === 'ls'
      ? lsLineFormatter(o.now)
      : o.format === 'names'
        ? (info: FileInfo) => safeName(info.name)
        : mlsxFormatter(mlsxPermByKind(o.permissions), { facts: o.facts });
  let out = '';
  for (let i = 0; i < table.names.length; i++) {
    if (!o.showHidden && table.names[i]!.startsWith('.')) continue;
    const info = entryAt(table, i);
    if (info) out += format(info) + '\r\n';
  }
  return out;
}

function nativeText(table: EntryTable, o: NativeLinesOptions): string | undefined {
  const chunks = nativeLines(table, o);
  return chunks && Buffer.concat([...chunks]).toString('utf8');
}

/**
 * native/format.c against src/listing/format.ts: every line of LIST, NLST and
 * MLSD (each fact choice) byte for byte, on a folder with every kind of entry,
 * awkward names, modes, sizes and dates on both sides of each date rule.
 */
describe('native listing lines', { skip: !nativeStatus().available && 'native helper not built' }, () => {
  let home: string;
  let storage: LocalStorage;
  const at = async (name: string, seconds: number) => fs.utimes(path.join(home, name), seconds, seconds);
  before(async () => {
    // tmpfs keeps any time; ext4 clamps to 1901-2446, which would hide the year rules' edges.
    home = await fs.mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'moat-native-lines-'));
    storage = new LocalStorage(home);
    // More than one 64 KiB chunk of lines.
    for (let i = 0; i < 1200; i++) await fs.writeFile(path.join(home, `f-${String(i).padStart(4, '0')}.txt`), 'x'.repeat(i % 23));
    const names = ['.hidden', 'é ü 名前.txt', '🚀 rocket.bin', 'cr\rlf\nname', 'del\x7fname', 'tab\tname', ' leading space', 'sub dir', 'pipe', 'big.sparse', 'hard-1'];
    for (const name of names.filter((n) => !['sub dir', 'pipe'].includes(n))) await fs.writeFile(path.join(home, name), name);
    await fs.mkdir(path.join(home, 'sub dir'));
    await fs.mkdir(path.join(home, '.hidden dir'));
    await run('mkfifo', [path.join(home, 'pipe')]);
    await fs.truncate(path.join(home, 'big.sparse'), 5 * 1024 ** 3 + 7);
    await fs.link(path.join(home, 'hard-1'), path.join(home, 'hard-2'));
    for (const [name, mode] of [['f-0000.txt', 0], ['f-0001.txt', 0o777], ['f-0002.txt', 0o4755], ['f-0003.txt', 0o640]] as const) await fs.chmod(path.join(home, name), mode);
    const now = NOW.getTime() / 1000;
    await at('f-0010.txt', now - SIX_MONTHS_MS / 1000 + 1); // just recent: time of day
    await at('f-0011.txt', now - SIX_MONTHS_MS / 1000 - 1); // just old: year
    await at('f-0012.txt', now + HOUR_MS / 1000 - 1); // a little in the future: time of day
    await at('f-0013.txt', now + HOUR_MS / 1000 + 1); // further: year
    await at('f-0014.txt', 253402300799.5); // 9999-12-31 23:59:59.5
    await at('f-0015.txt', 951782400.25); // 2000-02-29, a leap day, with milliseconds
    await at('f-0016.txt', 0);
    await run('touch', ['-m', '-d', '@-1.5005', path.join(home, 'f-0017.txt')]);
    await run('touch', ['-m', '-d', '@-62135596800', path.join(home, 'f-0018.txt')]); // 0001-01-01
  });
  after(() => fs.rm(home, { recursive: true, force: true }));

  it('LIST, NLST and MLSD lines equal the JavaScript formatter byte for byte', async () => {
    const table = await storage.listTable(ROOT);
    assert.equal(table.names.length, 1200 + 13);
    const permissions = ['elradfmwMT', 'elr', ''];
    const factSets = [undefined, new Set(['type', 'size', 'UNIX.mode']), new Set(['Modify', 'PERM', 'unique']), new Set<string>()];
    let compared = 0;
    for (const showHidden of [false, true]) {
      for (const format of ['ls', 'names', 'mlsx'] as const) {
        for (const perms of permissions) {
          for (const facts of format === 'mlsx' ? factSets : [undefined]) {
            const o: NativeLinesOptions = { format, now: NOW, showHidden, facts, permissions: perms };
            const native = nativeText(table, o);
            assert.ok(native !== undefined, 'the helper formats this listing');
            const expected = jsLines(table, o);
            if (native !== expected) {
              const a = native.split('\r\n');
              const b = expected.split('\r\n');
              const i = a.findIndex((line, k) => line !== b[k]);
              assert.equal(a[i], b[i], `first difference, line ${i}`);
            }
            assert.equal(native, expected, `${format} hidden=${showHidden} perms=${perms} facts=${[...(facts ?? ['all'])]}`);
            compared++;
          }
        }
      }
    }
    assert.equal(compared, 2 * (3 + 3 + 3 * 4));
    // The rules under test were hit: a hidden name, a masked name, both date forms, a large size.
    const ls = nativeText(table, { format: 'ls', now: NOW, showHidden: true, permissions: '' })!;
    assert.match(ls, / cr\?lf\?name\r\n/);
    assert.match(ls, / 5368709127 /);
    assert.match(ls, /\r\n-rwxr-xr-x .* f-0002\.txt\r\n/);
    assert.match(ls, / May 24 21:05 f-0010\.txt/);
    assert.match(ls, / May 24  2026 f-0011\.txt/);
    if (home.startsWith('/dev/shm/')) {
      assert.match(ls, / Dec 31  9999 f-0014\.txt/);
      assert.match(ls, / Jan  1  1 f-0018\.txt/);
    }
    assert.match(nativeText(table, { format: 'mlsx', now: NOW, showHidden: true, permissions: 'elr' })!, /modify=20000229000000\.250;.* f-0015\.txt/);
  });

  it('listings it cannot render exactly are left to JavaScript: links resolved, a name that is not UTF-8, a year past 9999', async () => {
    const o: NativeLinesOptions = { format: 'mlsx', now: NOW, showHidden: true, permissions: 'elr' };
    const probe = async (make: (dir: string) => Promise<void>) => {
      const dir = path.join(home, 'sub dir');
      await fs.rm(dir, { recursive: true });
      await fs.mkdir(dir);
      await make(dir);
      return nativeText(await storage.listTable('/sub dir' as VirtualPath), o);
    };
    assert.notEqual(await probe(async (dir) => fs.writeFile(path.join(dir, 'plain'), 'p')), undefined);
    assert.equal(await probe(async (dir) => fs.symlink('plain', path.join(dir, 'link'))), undefined);
    assert.equal(await probe(async (dir) => fs.writeFile(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0x66])]), 'x')), undefined);
    let far = 0;
    const farOut = await probe(async (dir) => {
      await fs.writeFile(path.join(dir, 'far'), 'x');
      await fs.utimes(path.join(dir, 'far'), 253402300800, 253402300800); // 10000-01-01
      far = (await fs.stat(path.join(dir, 'far'))).mtime.getUTCFullYear();
    });
    // Only where the filesystem keeps such a time (tmpfs; ext4 clamps it to 2446).
    if (far >= 10000) assert.equal(farOut, undefined);
    // A table that did not come from the helper.
    assert.equal(nativeLines({ names: ['a'], nums: new Float64Array([0, 1, 0, 0o644, 1]), uniques: ['1-2'] }, o), undefined);
  });
});
