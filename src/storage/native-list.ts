import { getSystemErrorName } from 'node:util';
import { FIELDS, tableLength } from './entry-table.js';
import { nativeHelper } from './native.js';
import type { EntryTable } from './types.js';

/** Listings a process runs natively at once (two threads each); past that they go to the fs workers. */
const MAX_JOBS = 4;
let jobs = 0;

/** Native tables whose names were turned into strings (the tests check a formatted listing needs none). */
export const nativeTablesDecoded = { tables: 0 };

/** A native listing's names and unique ids as the helper packed them, for its line formatter. */
const packedNames = new WeakMap<EntryTable, Buffer>();

/**
 * The packed names and ids behind a native listing's table, while they still
 * describe it (see `forgetPackedNames`); undefined for any other table.
 */
export function packedNamesOf(table: EntryTable): Buffer | undefined {
  return packedNames.get(table);
}

/** The table's entries were changed (links resolved in place): its packed ids are stale. */
export function forgetPackedNames(table: EntryTable): void {
  packedNames.delete(table);
}

/**
 * The first `n` entries of a sorted table, sharing its memory (and its packed
 * names, so the helper can still format it).
 */
export function tableHead(t: EntryTable, n: number): EntryTable {
  if (tableLength(t) <= n) return t;
  const head: EntryTable = {
    nums: t.nums.subarray(0, n * FIELDS),
    // Longer than the head: entries are counted by `nums` (tableLength), never by names.
    get names() {
      return t.names;
    },
    get uniques() {
      return t.uniques;
    },
  };
  const packed = packedNames.get(t);
  if (packed) packedNames.set(head, packed);
  return head;
}

/**
 * readdir + sort + lstat of the folder at host path `dir` on native threads:
 * at most `limit` names, without those that start with `hidden.prefix` and
 * end with `hidden.suffix`. Undefined, having done nothing, where the helper
 * is missing or busy: the caller lists through the fs workers. Rejects with
 * the errno of open or readdir (`code` set).
 */
export function nativeList(dir: string, limit: number, hidden: { prefix: string; suffix: string }): Promise<EntryTable> | undefined {
  const native = nativeHelper();
  if (!native || jobs >= MAX_JOBS) return undefined;
  let settle: (errno: number, joined?: Buffer, nums?: ArrayBuffer) => void = () => undefined;
  try {
    native.list(dir, Number.isFinite(limit) ? limit : Number.MAX_SAFE_INTEGER, hidden.prefix, hidden.suffix, (...args) => settle(...args));
  } catch {
    // No thread or memory for it now: nothing started, the fs workers may still manage.
    return undefined;
  }
  jobs++;
  return new Promise((resolve, reject) => {
    settle = (errno, joined, nums) => {
      jobs--;
      if (errno !== 0 || !joined || !nums) {
        const code = errno !== 0 ? getSystemErrorName(-errno) : 'ENOMEM';
        reject(Object.assign(new Error(`list ${dir}: ${code}`), { code, errno: -errno, syscall: 'scandir' }));
        return;
      }
      // Names and ids become strings only when read: a listing the helper also formats never needs them.
      let decoded: { names: string[]; uniques: string[] } | undefined;
      const decode = () => (decoded ??= unpack(joined, nums.byteLength === 0));
      const table: EntryTable = {
        nums: new Float64Array(nums),
        get names() {
          return decode().names;
        },
        get uniques() {
          return decode().uniques;
        },
      };
      packedNames.set(table, joined);
      resolve(table);
    };
  });
}

/** The helper's "name NUL unique NUL ..." as two arrays. */
function unpack(joined: Buffer, empty: boolean): { names: string[]; uniques: string[] } {
  nativeTablesDecoded.tables++;
  const parts = empty ? [] : joined.toString('utf8').split('\0');
  const names: string[] = [];
  const uniques: string[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    names.push(parts[i]!);
    uniques.push(parts[i + 1]!);
  }
  return { names, uniques };
}
