import type { EntryTable, FileInfo, FileKind } from './types.js';

/** Kinds by the number a packed listing uses for them (fs workers, native helper, EntryTable). */
export const KINDS = ['file', 'dir', 'link', 'other'] as const;
export const KIND_LINK = KINDS.indexOf('link');
/** Numbers per entry in a packed listing: kind, size, mtime ms, mode, nlink. */
export const FIELDS = 5;

/** Entries in a packed table, counted without touching its names (a native table decodes them on first read). */
export function tableLength(t: EntryTable): number {
  return t.nums.length / FIELDS;
}

/** A listing entry from its lstat fields. */
export function fileInfo(name: string, kind: FileKind, size: number, mtimeMs: number, mode: number, nlink: number, unique: string): FileInfo {
  return fill({ name: '', kind: 'file', size: 0, mtime: new Date(0), mode: 0, unique: '', nlink: 0 }, name, kind, size, mtimeMs, mode, nlink, unique);
}

/**
 * Entry `i` of a packed table, or undefined when it was gone. With `into`,
 * that object is refilled instead of a new one made (a listing of 10,000
 * entries then holds one object, not 10,000).
 */
export function entryAt(t: EntryTable, i: number, into?: FileInfo): FileInfo | undefined {
  const at = i * FIELDS;
  const kind = KINDS[t.nums[at]!];
  if (!kind) return undefined;
  const n = t.nums;
  if (!into) return fileInfo(t.names[i]!, kind, n[at + 1]!, n[at + 2]!, n[at + 3]!, n[at + 4]!, t.uniques[i]!);
  return fill(into, t.names[i]!, kind, n[at + 1]!, n[at + 2]!, n[at + 3]!, n[at + 4]!, t.uniques[i]!);
}

function fill(info: FileInfo, name: string, kind: FileKind, size: number, mtimeMs: number, mode: number, nlink: number, unique: string): FileInfo {
  info.name = name;
  info.kind = kind;
  // An outside link's lstat size is the length of its target string: a small leak, so it is hidden.
  info.size = kind === 'link' ? 0 : size;
  info.mtime = new Date(mtimeMs);
  info.mode = mode & 0o777;
  info.unique = unique;
  info.nlink = nlink;
  return info;
}
