import { KINDS } from '../storage/entry-table.js';
import type { FileInfo, FileKind } from '../storage/types.js';

/*
 * Text forms of file metadata that FTP clients parse: `ls -l` lines (LIST),
 * RFC 3659 facts (MLSD/MLST) and timestamps (MDTM/MFMT). Pure functions: the
 * caller does the I/O. All dates are UTC and month names English, whatever the
 * host's locale, because clients parse them.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** GNU ls's "recent" window: half an average Gregorian year. */
const SIX_MONTHS_MS = (365.2425 * 24 * 60 * 60 * 1000) / 2;
const ONE_HOUR_MS = 60 * 60 * 1000;

/**
 * Names come from the disk, where a local user may have put CR or LF in one;
 * sent raw, it would forge extra listing lines. Clients cannot address such
 * names anyway (control characters are refused in paths), so they are masked.
 */
export function safeName(name: string): string {
  return name.replace(/[\u0000-\u001f\u007f]/g, '?');
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `rwxr-xr-x` for each of the 512 permission values: a listing looks one up per entry. */
const RWX = Array.from({ length: 0o1000 }, (_, mode) => {
  let out = '';
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7;
    out += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return out;
});

/**
 * Memo for date columns within one listing: a big folder's files mostly share
 * a few minutes or days, and formatting a date costs more than the lookup.
 * Per listing, not global, so it holds at most one string per distinct key.
 */
function memo(format: (key: number) => string): (key: number) => string {
  const cache = new Map<number, string>();
  return (key) => {
    let text = cache.get(key);
    if (text === undefined) {
      text = format(key);
      cache.set(key, text);
    }
    return text;
  };
}

/** The first column of `ls -l` (type letter and permissions) for each kind of entry and mode. */
const DIR_MODES = RWX.map((rwx) => `d${rwx}`);
const LINK_MODES = RWX.map((rwx) => `l${rwx}`);
const FILE_MODES = RWX.map((rwx) => `-${rwx}`);

const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * `ls -l` lines, in the layout vsftpd and most servers use:
 * `drwxr-xr-x    2 ftp      ftp          4096 Nov 23 09:18 name`.
 * Owner and group are always "ftp": host user and group ids are none of the client's business.
 * Returns a formatter for many lines against one clock, as a listing needs.
 */
export function lsLineFormatter(now: Date): (info: FileInfo) => string {
  const nowMs = now.getTime();
  const recentDate = memo((minute) => {
    const t = new Date(minute * MINUTE_MS);
    return `${MONTHS[t.getUTCMonth()]} ${String(t.getUTCDate()).padStart(2, ' ')} ${two(t.getUTCHours())}:${two(t.getUTCMinutes())}`;
  });
  const oldDate = memo((day) => {
    const t = new Date(day * DAY_MS);
    return `${MONTHS[t.getUTCMonth()]} ${String(t.getUTCDate()).padStart(2, ' ')}  ${t.getUTCFullYear()}`;
  });
  // The columns up to the size are few distinct strings in a listing: built once each.
  const linkColumn = memo((nlink) => ` ${String(nlink).padStart(4)} ftp      ftp      `);
  return (info) => {
    const modes = info.kind === 'dir' ? DIR_MODES : info.kind === 'link' ? LINK_MODES : FILE_MODES;
    const ms = info.mtime.getTime();
    const age = nowMs - ms;
    const when =
      age < SIX_MONTHS_MS && age > -ONE_HOUR_MS
        ? recentDate(Math.floor(ms / MINUTE_MS))
        : oldDate(Math.floor(ms / DAY_MS));
    return `${modes[info.mode & 0o777]}${linkColumn(info.nlink)}${String(info.size).padStart(8)} ${when} ${safeName(info.name)}`;
  };
}

/** YYYYMMDDHHMMSS in UTC, the MDTM reply and the RFC 3659 time-val. */
export function formatMdtm(date: Date): string {
  return (
    String(date.getUTCFullYear()).padStart(4, '0') +
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds())
  );
}

/**
 * Parse an RFC 3659 time-val (`YYYYMMDDHHMMSS[.fraction]`, UTC), as sent with
 * MFMT or the two-argument MDTM. Returns null unless every field is in range.
 * A leap second (60) is accepted, as the RFC allows, and kept as :59.
 */
export function parseMdtm(s: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?$/.exec(s);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number, number, number, number, number, number,
  ];
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 60) return null;
  const daysInMonth = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  if (day < 1 || day > daysInMonth) return null;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: the latter maps years 0-99 onto 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, Math.min(second, 59), ms);
  return date;
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * RFC 3659 `perm` letters for one entry, from the user's permission letters
 * (see auth/permissions). A link (one that leads out of the home or nowhere:
 * the others are listed as their target) and a special file can only be
 * deleted and renamed, which act on the entry itself.
 */
export function mlsxPerm(info: Pick<FileInfo, 'kind'>, userPermissions: string): string {
  const has = (letter: string) => userPermissions.includes(letter);
  let out = '';
  if (info.kind === 'file') {
    if (has('r')) out += 'r';
    if (has('w')) out += 'w';
    if (has('a')) out += 'a';
  } else if (info.kind === 'dir') {
    if (has('e')) out += 'e';
    if (has('l')) out += 'l';
    if (has('w')) out += 'c';
    if (has('m')) out += 'm';
    if (has('d')) out += 'p';
  }
  if (has('d')) out += 'd';
  if (has('f')) out += 'f';
  return out;
}

/** mlsxPerm for every entry of one listing: the letters depend only on the entry's kind. */
export function mlsxPermByKind(userPermissions: string): (info: FileInfo) => string {
  const byKind = new Map(KINDS.map((kind) => [kind, mlsxPerm({ kind }, userPermissions)]));
  return (info) => byKind.get(info.kind)!;
}

function mlsxType(kind: FileKind): string {
  switch (kind) {
    case 'file':
      return 'file';
    case 'dir':
      return 'dir';
    case 'link':
      return 'OS.unix=symlink';
    case 'other':
      return 'OS.unix=special';
  }
}

/** The `UNIX.mode` fact for each of the 512 permission values. */
const MODE_FACT = Array.from({ length: 0o1000 }, (_, mode) => `UNIX.mode=${mode.toString(8).padStart(4, '0')};`);
/** What ends the modify fact for each millisecond: none for a whole second, else `.mmm`. */
const MS_SUFFIX = Array.from({ length: 1000 }, (_, ms) => (ms ? `.${String(ms).padStart(3, '0')};` : ';'));

/** Every fact an MLSD line may carry, in the order it carries them. */
const MLSX_FACTS = ['type', 'size', 'modify', 'perm', 'unique', 'UNIX.mode'] as const;

/** The facts a client asked for as bits, 1 << index in MLSX_FACTS (native/format.c's FACT_*). */
export function mlsxFactBits(facts: ReadonlySet<string> | undefined): number {
  const want = wantedFacts(facts);
  return MLSX_FACTS.reduce((bits, fact, i) => (want(fact) ? bits | (1 << i) : bits), 0);
}

/** mlsxPerm for each kind, in the order of the packed listings' kind numbers (storage/entry-table KINDS). */
export function mlsxPermsByKindNumber(userPermissions: string): string[] {
  return KINDS.map((kind) => mlsxPerm({ kind }, userPermissions));
}

/** The facts a client asked for (OPTS MLST), decided once per listing rather than per entry. */
function wantedFacts(facts: ReadonlySet<string> | undefined): (name: string) => boolean {
  if (!facts) return () => true;
  const wanted = new Set([...facts].map((f) => f.toLowerCase()));
  return (name) => wanted.has(name.toLowerCase());
}

/**
 * MLSD lines: `type=file;size=123;modify=...;perm=...;unique=...;UNIX.mode=0644; name`.
 * `facts` (from OPTS MLST) limits which facts appear; all by default. Returns a
 * formatter for many lines, with `perm` derived per kind from the user's permission letters.
 */
export function mlsxFormatter(
  perm: (info: FileInfo) => string,
  options: { facts?: ReadonlySet<string> } = {},
): (info: FileInfo) => string {
  const [type, size, modify, permFact, unique, mode] = MLSX_FACTS.map(wantedFacts(options.facts));
  const modifyText = memo((second) => `modify=${formatMdtm(new Date(second * 1000))}`);
  // Whole facts, looked up: a 10,000-entry MLSD builds each line from a few pieces, not a dozen.
  const typeFact = new Map(KINDS.map((kind) => [kind, `type=${mlsxType(kind)};`]));
  const permFacts = new Map<string, string>();
  return (info) => {
    let out = '';
    if (type) out += typeFact.get(info.kind)!;
    if (size && info.kind !== 'dir') out += `size=${info.size};`;
    if (modify) {
      const msTotal = info.mtime.getTime();
      const ms = ((msTotal % 1000) + 1000) % 1000;
      out += modifyText(Math.floor(msTotal / 1000)) + MS_SUFFIX[ms];
    }
    if (permFact) {
      const letters = perm(info);
      let fact = permFacts.get(letters);
      if (fact === undefined) permFacts.set(letters, (fact = `perm=${letters};`));
      out += fact;
    }
    if (unique) out += `unique=${info.unique};`;
    if (mode) out += MODE_FACT[info.mode & 0o777];
    return `${out} ${safeName(info.name)}`;
  };
}

/** One MLSD line or MLST entry with the given `perm` letters (see mlsxFormatter). */
export function formatMlsxFacts(info: FileInfo, perm: string, options: { facts?: ReadonlySet<string> } = {}): string {
  return mlsxFormatter(() => perm, options)(info);
}

/**
 * Split a LIST/NLST argument into `ls`-style flags and a path. Clients send
 * `LIST -a`, `LIST -la dir`, `LIST -a -l`. Rule: each leading space-separated
 * token made only of '-' and letters from `alRrt1dhF` is a flag group; the rest,
 * spaces included, is the path. So a file named `-x` is a path, while a file
 * named `-la` must be asked for as `./-la`. A name may start with spaces
 * (`LIST  x` lists " x"). Nothing is ever expanded: '*' and
 * '?' are literal characters (globbing in LIST was CVE-2011-0762 in vsftpd).
 */
export function parseListArgs(arg: string): { flags: string; path: string } {
  // Spaces before a flag group are dropped; before a name they belong to it, as in every other command.
  let rest = /^ +-[alRrt1dhF]+(?: |$)/.test(arg) ? arg.replace(/^ +/, '') : arg;
  let flags = '';
  for (;;) {
    const m = /^-([alRrt1dhF]+)(?: +|$)/.exec(rest);
    if (!m) break;
    flags += m[1];
    rest = rest.slice(m[0].length);
  }
  return { flags, path: rest };
}
