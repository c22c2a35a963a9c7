import { nativeHelper } from '../storage/native.js';
import { packedNamesOf } from '../storage/native-list.js';
import type { EntryTable } from '../storage/types.js';
import { mlsxFactBits, mlsxPermsByKindNumber } from './format.js';

/** How many listings the helper formatted in this process (the tests check the fast path is taken). */
export const nativeLinesUsed = { listings: 0 };

/** native/format.c's format numbers. */
const FORMATS = { ls: 0, mlsx: 1, names: 2 } as const;

export interface NativeLinesOptions {
  format: keyof typeof FORMATS;
  /** The clock the `ls -l` dates are judged against (recent: time of day; older: year). */
  now: Date;
  showHidden: boolean;
  /** OPTS MLST's choice of facts (MLSD). */
  facts?: ReadonlySet<string>;
  /** The user's permission letters, for the `perm` fact (MLSD). */
  permissions: string;
}

/**
 * A native listing's lines formatted by the helper (native/format.c) in
 * chunks of ~64 KiB, the same bytes as src/listing/format.ts would give; or
 * undefined when the table is not one the helper can format exactly (not
 * from the helper, links resolved, a name that is not UTF-8, a date outside
 * years 0-9999): the caller formats in JavaScript then.
 */
export function nativeLines(table: EntryTable, options: NativeLinesOptions): Iterable<Buffer> | undefined {
  const native = nativeHelper();
  const packed = packedNamesOf(table);
  if (!native || !packed || !native.formattable(packed, table.nums)) return undefined;
  const format = FORMATS[options.format];
  const facts = mlsxFactBits(options.facts);
  const perms = mlsxPermsByKindNumber(options.permissions);
  const nowMs = options.now.getTime();
  nativeLinesUsed.listings++;
  return (function* () {
    const cursor = new Float64Array(2);
    for (;;) {
      const chunk = native.formatLines(packed, table.nums, cursor, format, nowMs, options.showHidden, facts, perms);
      if (!chunk) return;
      if (chunk.length) yield chunk;
    }
  })();
}
