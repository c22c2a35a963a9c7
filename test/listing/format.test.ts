import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  lsLineFormatter,
  formatMdtm,
  formatMlsxFacts,
  mlsxPerm,
  parseListArgs,
  parseMdtm,
} from '../../src/listing/format.js';
import type { FileInfo } from '../../src/storage/types.js';

const now = new Date('2024-11-30T12:00:00Z');

function info(overrides: Partial<FileInfo>): FileInfo {
  return {
    name: 'name',
    kind: 'file',
    size: 0,
    mtime: new Date('2024-11-23T09:18:00Z'),
    mode: 0o644,
    unique: '803-1a2b',
    nlink: 1,
    ...overrides,
  };
}

describe('lsLineFormatter', () => {
  it('recent directory, in the classic layout', () => {
    const line = lsLineFormatter(now)(info({ kind: 'dir', mode: 0o755, nlink: 2, size: 4096 }));
    assert.equal(line, 'drwxr-xr-x    2 ftp      ftp          4096 Nov 23 09:18 name');
  });

  it('old file shows the year', () => {
    const line = lsLineFormatter(now)(info({ size: 123, mtime: new Date('2019-03-05T10:00:00Z'), name: 'a b.txt' }));
    assert.equal(line, '-rw-r--r--    1 ftp      ftp           123 Mar  5  2019 a b.txt');
  });

  it('the future beyond one hour shows the year, within one hour the time', () => {
    const soon = lsLineFormatter(now)(info({ mtime: new Date('2024-11-30T12:30:00Z') }));
    assert.match(soon, / Nov 30 12:30 name$/);
    const later = lsLineFormatter(now)(info({ mtime: new Date('2024-11-30T14:00:00Z') }));
    assert.match(later, / Nov 30  2024 name$/);
  });

  it('six months back is the boundary', () => {
    assert.match(lsLineFormatter(now)(info({ mtime: new Date('2024-06-15T00:00:00Z') })), /Jun 15 00:00/);
    assert.match(lsLineFormatter(now)(info({ mtime: new Date('2024-05-15T00:00:00Z') })), /May 15  2024/);
  });

  it('links, wide sizes, odd modes', () => {
    const line = lsLineFormatter(now)(info({ kind: 'link', mode: 0o777, size: 5368709120, nlink: 12345 }));
    assert.equal(line, 'lrwxrwxrwx 12345 ftp      ftp      5368709120 Nov 23 09:18 name');
    assert.match(lsLineFormatter(now)(info({ mode: 0o7000 })), /^----------/);
  });

  it('masks control characters so a name cannot forge listing lines', () => {
    const line = lsLineFormatter(now)(info({ name: 'evil\r\n-rw-r--r-- fake' }));
    assert.ok(!/[\r\n]/.test(line));
    assert.match(line, /evil\?\?-rw-r--r-- fake$/);
  });

  it('uses English UTC month names regardless of the local time zone', () => {
    // 23:30 UTC on Dec 31 is already Jan 1 in most time zones east of UTC.
    const line = lsLineFormatter(new Date('2024-01-01T00:00:00Z'))(info({ mtime: new Date('2023-12-31T23:30:00Z') }));
    assert.match(line, / Dec 31 23:30 name$/);
  });
});

describe('MLSx facts', () => {
  it('file facts in order, then a space and the name', () => {
    const i = info({ size: 123, mtime: new Date('2024-11-23T09:18:07Z'), name: 'My File.txt' });
    assert.equal(
      formatMlsxFacts(i, 'rwadf'),
      'type=file;size=123;modify=20241123091807;perm=rwadf;unique=803-1a2b;UNIX.mode=0644; My File.txt',
    );
  });

  it('directories have no size, milliseconds are kept', () => {
    const i = info({ kind: 'dir', mode: 0o755, mtime: new Date('2024-11-23T09:18:07.045Z'), name: 'd' });
    assert.equal(
      formatMlsxFacts(i, 'elcmpdf'),
      'type=dir;modify=20241123091807.045;perm=elcmpdf;unique=803-1a2b;UNIX.mode=0755; d',
    );
  });

  it('facts can be limited (OPTS MLST), case-insensitively', () => {
    const i = info({ size: 9 });
    assert.equal(formatMlsxFacts(i, 'r', { facts: new Set(['type', 'SIZE', 'unix.mode']) }), 'type=file;size=9;UNIX.mode=0644; name');
    assert.equal(formatMlsxFacts(i, 'r', { facts: new Set() }), ' name');
  });

  it('links and special files get OS types', () => {
    assert.match(formatMlsxFacts(info({ kind: 'link' }), ''), /^type=OS\.unix=symlink;/);
    assert.match(formatMlsxFacts(info({ kind: 'other' }), ''), /^type=OS\.unix=special;/);
  });

  it('perm letters follow RFC 3659 from the user permissions', () => {
    const all = 'elrafdmwMT';
    assert.equal(mlsxPerm(info({ kind: 'file' }), all), 'rwadf');
    assert.equal(mlsxPerm(info({ kind: 'dir' }), all), 'elcmpdf');
    assert.equal(mlsxPerm(info({ kind: 'file' }), 'lr'), 'r');
    assert.equal(mlsxPerm(info({ kind: 'dir' }), 'lr'), 'l');
    assert.equal(mlsxPerm(info({ kind: 'dir' }), 'w'), 'c');
    assert.equal(mlsxPerm(info({ kind: 'dir' }), 'd'), 'pd');
    assert.equal(mlsxPerm(info({ kind: 'file' }), ''), '');
    assert.equal(mlsxPerm(info({ kind: 'link' }), all), 'df');
    assert.equal(mlsxPerm(info({ kind: 'link' }), 'elr'), '');
    assert.equal(mlsxPerm(info({ kind: 'other' }), all), 'df');
  });
});

describe('MDTM', () => {
  it('formats in UTC', () => {
    assert.equal(formatMdtm(new Date('2024-02-29T23:59:58.999Z')), '20240229235958');
    assert.equal(formatMdtm(new Date('1970-01-01T00:00:00Z')), '19700101000000');
  });

  it('round-trips', () => {
    for (const s of ['20240229235958', '19700101000000', '99991231235959', '00010101000000']) {
      const d = parseMdtm(s);
      assert.ok(d, s);
      assert.equal(formatMdtm(d), s);
    }
  });

  it('accepts a fraction', () => {
    assert.equal(parseMdtm('20241123091807.5')?.toISOString(), '2024-11-23T09:18:07.500Z');
    assert.equal(parseMdtm('20241123091807.045')?.toISOString(), '2024-11-23T09:18:07.045Z');
    assert.equal(parseMdtm('20241123091807.123456')?.toISOString(), '2024-11-23T09:18:07.123Z');
  });

  it('keeps two-digit years as they are and a leap second as :59', () => {
    assert.equal(parseMdtm('00500101000000')?.getUTCFullYear(), 50);
    assert.equal(parseMdtm('20161231235960')?.toISOString(), '2016-12-31T23:59:59.000Z');
  });

  it('rejects invalid input', () => {
    for (const bad of [
      '',
      '2024112309180',
      '202411230918070',
      '20241123091807.',
      '2024-11-23 09:18',
      ' 20241123091807',
      '20241323091807',
      '20240023091807',
      '20241100091807',
      '20240230000000',
      '20230229000000',
      '20241131000000',
      '20241123241807',
      '20241123096007',
      '20241123091861',
      '00000101000000',
      '２０２４１１２３０９１８０７',
    ]) {
      assert.equal(parseMdtm(bad), null, bad);
    }
    assert.ok(parseMdtm('20000229000000'), 'year 2000 is a leap year');
    assert.equal(parseMdtm('21000229000000'), null, '2100 is not');
  });
});

describe('parseListArgs', () => {
  const cases: [string, string, string][] = [
    ['', '', ''],
    ['-a', 'a', ''],
    ['-la', 'la', ''],
    ['-al dir', 'al', 'dir'],
    ['-R', 'R', ''],
    ['-a -l', 'al', ''],
    ['-la my dir with  spaces', 'la', 'my dir with  spaces'],
    ['my dir', '', 'my dir'],
    ['-x', '', '-x'],
    ['-', '', '-'],
    ['--', '', '--'],
    ['-la -x', 'la', '-x'],
    ['-la-', '', '-la-'],
    ['./-la', '', './-la'],
    ['*', '', '*'],
    ['-l *.txt', 'l', '*.txt'],
    ['../*/../*/../*', '', '../*/../*/../*'],
    ['  -a  sub', 'a', 'sub'],
    [' lead.txt', '', ' lead.txt'],
    ['  -x', '', '  -x'],
  ];
  for (const [arg, flags, path] of cases) {
    it(JSON.stringify(arg), () => {
      assert.deepEqual(parseListArgs(arg), { flags, path });
    });
  }
});
