import { randomBytes } from 'node:crypto';
import { constants as C, type BigIntStats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  StorageError,
  type ChunkReleasingSink,
  type FileBackedSink,
  type FileTarget,
  type Download,
  type EntryTable,
  type FileInfo,
  type FileKind,
  type Storage,
  type TableListing,
  type Upload,
  type VirtualPath,
  type WriteOptions,
} from './types.js';
import { errno, fail, toStorageError } from './errors.js';
import { BufferSource, FileSource } from './file-source.js';
import { entryAt, FIELDS, KIND_LINK, KINDS, tableLength } from './entry-table.js';
import { fsWorkers, type SmallRead } from './fs-workers.js';
import { forgetPackedNames, nativeList } from './native-list.js';
import { segments } from './vpath.js';

/*
 * The jail. Every virtual path is mapped onto the home by validated segments,
 * then the real path (symlinks followed) is checked to lie inside the real
 * home before anything is touched. Operations then run on that real path, so
 * a symlink would have to be planted after the check to escape; FTP clients
 * cannot create symlinks at all, and the final component is opened with
 * O_NOFOLLOW to narrow the window for local users who can.
 *
 * Policy for symlinks found in the home (planted by an admin or a local user):
 * - pointing inside the home: followed, and listed as what they point to;
 * - pointing outside, dangling or looping: every operation through them fails
 *   with 'outside-jail' (a target we cannot resolve cannot be proved to stay
 *   inside). The link itself is an entry of the home like any other: listed
 *   and described (stat) as kind 'link' with its own lstat data and size 0, so
 *   nothing about the target leaks; deleted and renamed as itself.
 */

/** Prefix and suffix of in-progress uploads; such names are hidden and reserved. */
const TEMP_PREFIX = '.moat-upload-';
const TEMP_SUFFIX = '.part';
/** Upload temp files, never listed. */
const HIDDEN = { prefix: TEMP_PREFIX, suffix: TEMP_SUFFIX };
const IO_CHUNK = 1024 * 1024;
/** Downloads up to this size are read whole by an fs worker (see #readSmall). */
const SMALL_FILE_BYTES = 256 * 1024;
/** How many symlinks a listing resolves at once: enough to keep the disk busy, bounded for folders full of links. */
const LIST_CONCURRENCY = 64;

function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
}

/** An upload's part untouched this long was left by a crash: no live upload stalls for an hour. */
const STALE_PART_MS = 3600_000;

/**
 * A folder RMD found not empty: when its only entries are upload parts (hidden
 * from clients, who could never remove them), stale ones are removed so RMD
 * can proceed ('removed'), and a fresh one means an upload into it is running
 * ('uploading': the client sees an empty folder and is told why it stays).
 * Anything else in the folder leaves it untouched ('not-empty').
 */
async function removeStaleParts(dir: string): Promise<'removed' | 'uploading' | 'not-empty'> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  if (names.length === 0 || !names.every(isTempName)) return 'not-empty';
  const now = Date.now();
  for (const name of names) {
    const st = await fs.lstat(path.join(dir, name)).catch(() => undefined);
    if (!st?.isFile()) return 'not-empty';
    if (now - st.mtimeMs < STALE_PART_MS) return 'uploading';
  }
  await Promise.all(names.map((name) => fs.unlink(path.join(dir, name)).catch(() => undefined)));
  return 'removed';
}

function isInside(real: string, realHome: string): boolean {
  if (real === realHome) return true;
  const prefix = realHome.endsWith(path.sep) ? realHome : realHome + path.sep;
  return real.startsWith(prefix);
}

function kindOf(st: BigIntStats): FileKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'link';
  return 'other';
}

function toInfo(name: string, st: BigIntStats, kind: FileKind = kindOf(st)): FileInfo {
  return {
    name,
    kind,
    // An outside link's lstat size is the length of its target string: a small leak, so it is hidden.
    size: kind === 'link' ? 0 : Number(st.size),
    mtime: st.mtime,
    mode: Number(st.mode) & 0o777,
    unique: `${st.dev.toString(16)}-${st.ino.toString(16)}`,
    nlink: Number(st.nlink),
  };
}

function exists(r: Resolved): Resolved {
  if (!r.lstat) throw fail('not-found');
  return r;
}

/** Every entry of a packed table that is still there, as FileInfo. */
function tableInfos(t: EntryTable): FileInfo[] {
  const out: FileInfo[] = [];
  for (let i = 0, n = tableLength(t); i < n; i++) {
    const info = entryAt(t, i);
    if (info) out.push(info);
  }
  return out;
}

/** How long a verified home is trusted before a login checks it again (and recreates it if removed). */
const HOME_RECHECK_MS = 10_000;

/**
 * Homes under `root`, one LocalStorage each, verified by `LocalStorage.create` at
 * most every HOME_RECHECK_MS: a camera that logs in every few seconds, or a
 * thousand of them, costs no filesystem calls at login. Safe to share: a
 * LocalStorage holds no per-session state, and every operation re-checks the jail.
 */
export function localHomes(root: string, options: LocalStorageOptions = {}): (home: string) => Promise<LocalStorage> {
  const verified = new Map<string, { storage: Promise<LocalStorage>; at: number }>();
  return (home) => {
    const now = Date.now();
    const hit = verified.get(home);
    if (hit && now - hit.at < HOME_RECHECK_MS) return hit.storage;
    const entry = { storage: LocalStorage.create(root, home, options), at: now };
    verified.set(home, entry);
    entry.storage.catch(() => {
      if (verified.get(home) === entry) verified.delete(home);
    });
    return entry.storage;
  };
}

/** Where a virtual path lands on disk, after the jail check. */
interface Resolved {
  /** True for the home itself, which cannot be deleted or renamed. */
  isHome: boolean;
  /** Real parent folder + the entry's own name: the link itself when the entry is one. */
  entry: string;
  /** The entry with symlinks followed; equals `entry` when it is not a link. */
  real: string;
  /** lstat of `entry`, or null when nothing exists there yet. */
  lstat: BigIntStats | null;
}

export interface LocalStorageOptions {
  /**
   * Send downloads on plain data connections with sendfile(2) when the native
   * helper is built (default true); false always sends through buffers.
   */
  sendfile?: boolean;
}

export class LocalStorage implements Storage, TableListing {
  readonly #home: string;
  readonly #sendfile: boolean;
  #realHome: Promise<string> | undefined;

  constructor(homeHostPath: string, options: LocalStorageOptions = {}) {
    if (!path.isAbsolute(homeHostPath)) throw new TypeError('LocalStorage needs an absolute home path');
    this.#home = path.normalize(homeHostPath);
    this.#sendfile = options.sendfile ?? true;
  }

  /**
   * Storage for the home `homeRelative` under `root`, creating it if missing.
   * The home comes from configuration, not from a client, but a typo like
   * '../alice' must still not put a user's files outside the storage root.
   */
  static async create(root: string, homeRelative: string, options: LocalStorageOptions = {}): Promise<LocalStorage> {
    if (!path.isAbsolute(root)) throw new TypeError('storage root must be an absolute path');
    const parts = homeRelative.split(/[\\/]/).filter((s) => s !== '' && s !== '.');
    if (parts.includes('..') || homeRelative.includes('\0')) throw fail('outside-jail');
    const home = path.join(root, ...parts);
    try {
      await fs.mkdir(home, { recursive: true, mode: 0o755 });
      const [realRoot, realHome] = await Promise.all([fs.realpath(root), fs.realpath(home)]);
      if (!isInside(realHome, realRoot)) throw fail('outside-jail');
      const st = await fs.stat(realHome);
      if (!st.isDirectory()) throw fail('not-a-directory');
    } catch (error) {
      throw toStorageError(error);
    }
    return new LocalStorage(home, options);
  }

  async stat(vpath: VirtualPath): Promise<FileInfo> {
    const r = await this.#existingEntry(vpath);
    const name = this.#displayName(vpath);
    if (!r.lstat!.isSymbolicLink()) return toInfo(name, r.lstat!);
    const followed = await this.#follow(r).catch((error: unknown) => {
      if (error instanceof StorageError && error.kind === 'outside-jail') return undefined;
      throw error;
    });
    // A link that leads out (or nowhere) is described as itself, as listings show it.
    if (!followed) return toInfo(name, r.lstat!);
    return toInfo(name, await this.#fs(() => fs.stat(followed.real, { bigint: true })));
  }

  async list(vpath: VirtualPath, options: { limit?: number } = {}): Promise<FileInfo[]> {
    return tableInfos(await this.listTable(vpath, options));
  }

  /**
   * The folder as one packed table, sorted by name: read by a native job
   * (readdir, sort and lstat on threads of their own) when the helper is there
   * and free, else through the fs workers. Upload temp files are left out; at
   * most `limit` entries, so memory is bounded by the limit. Links are
   * resolved in place (see #resolveLinks).
   */
  async listTable(vpath: VirtualPath, options: { limit?: number } = {}): Promise<EntryTable> {
    const r = await this.#existing(vpath);
    const limit = options.limit ?? Infinity;
    const native = nativeList(r.real, limit, HIDDEN);
    const table = native ? await this.#fs(() => native) : await this.#workerTable(r.real, limit);
    const { nums } = table;
    const links: number[] = [];
    for (let i = 0; i < nums.length; i += FIELDS) if (nums[i] === KIND_LINK) links.push(i / FIELDS);
    if (links.length === 0) return table;
    forgetPackedNames(table);
    const resolved = await this.#resolveLinks(r.real, links.map((i) => entryAt(table, i)!));
    links.forEach((at, k) => {
      const info = resolved[k]!;
      nums.set([KINDS.indexOf(info.kind), info.size, info.mtime.getTime(), info.mode, info.nlink], at * FIELDS);
      table.uniques[at] = info.unique;
    });
    return table;
  }

  /** The same table through the fs workers: names in one, lstat in batches on all of them. */
  async #workerTable(dirReal: string, limit: number): Promise<EntryTable> {
    const names = await this.#fs(() => fsWorkers.readNames(dirReal, limit, HIDDEN));
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const stats = await this.#fs(() => fsWorkers.lstat(dirReal, names));
    const nums = new Float64Array(names.length * FIELDS);
    const uniques = stats.map((st, i) => {
      if (!st) {
        nums[i * FIELDS] = -1; // removed since readdir
        return '';
      }
      nums.set([KINDS.indexOf(st.kind), st.size, st.mtimeMs, st.mode, st.nlink], i * FIELDS);
      return `${st.dev.toString(16)}-${st.ino.toString(16)}`;
    });
    return { names, nums, uniques };
  }

  async read(vpath: VirtualPath, options: { start?: number } = {}): Promise<Download> {
    const start = options.start ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) throw fail('invalid-path');
    const { entry } = await this.#entryPath(vpath);
    const small = await this.#readSmall(entry);
    const known = small === 'link' ? undefined : small;
    if (known?.kind === 'dir') throw fail('is-a-directory');
    if (known?.kind === 'other') throw fail('permission');
    if (known?.data) return { size: known.size, stream: new BufferSource(known.data.subarray(Math.min(start, known.size)), known.release) };
    const fh = await this.#openForReading(vpath, entry, small === 'link');
    let size: number;
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw fail('is-a-directory');
      if (!st.isFile()) throw fail('permission');
      size = st.size;
    } catch (error) {
      await fh.close();
      throw toStorageError(error);
    }
    // Bounded by the size announced in the 150 reply: buffers are no larger than what is
    // left (a 300 KiB file costs one 300 KiB buffer, not a 4 MiB one) and no read is spent on EOF.
    return { size, stream: new FileSource(fh, start, size, this.#sendfile) };
  }

  async write(vpath: VirtualPath, options: WriteOptions = {}): Promise<Upload> {
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw fail('invalid-path');
    const r = await this.#resolve(vpath);
    if (r.isHome) throw fail('is-a-directory');
    if (r.lstat && r.real !== r.entry) {
      // Writing through a link inside the home writes its target, like a shell would.
      const target = await this.#fs(() => fs.stat(r.real, { bigint: true }));
      if (target.isDirectory()) throw fail('is-a-directory');
    } else if (r.lstat?.isDirectory()) {
      throw fail('is-a-directory');
    }
    if (options.append) return this.#openInPlace(r.real, null, 'a');
    if (offset > 0) return this.#openInPlace(r.real, offset, 'r+');
    return this.#openFresh(r.real, options.exclusive === true);
  }

  async mkdir(vpath: VirtualPath): Promise<void> {
    const r = await this.#resolve(vpath);
    if (r.lstat) throw fail('exists');
    await this.#fs(() => fs.mkdir(r.entry, { mode: 0o755 }));
  }

  async rmdir(vpath: VirtualPath): Promise<void> {
    const r = await this.#existing(vpath);
    if (r.isHome) throw fail('permission');
    // On the entry, not its target: rmdir of a link fails with ENOTDIR, as it should.
    try {
      await fs.rmdir(r.entry);
    } catch (error) {
      if (errno(error) !== 'ENOTEMPTY') throw toStorageError(error);
      const parts = await removeStaleParts(r.entry);
      if (parts === 'uploading') throw fail('busy', error);
      if (parts === 'not-empty') throw toStorageError(error);
      await this.#fs(() => fs.rmdir(r.entry));
    }
  }

  async delete(vpath: VirtualPath): Promise<void> {
    const r = await this.#existingEntry(vpath);
    if (r.isHome) throw fail('permission');
    if (r.lstat?.isDirectory()) throw fail('is-a-directory');
    // A link inside the home is removed itself, never its target (as `rm` does).
    await this.#fs(() => fs.unlink(r.entry));
  }

  async rename(from: VirtualPath, to: VirtualPath): Promise<void> {
    // Names are renamed, never what a link points to: a link that leads out moves like any entry.
    const source = await this.#existingEntry(from);
    if (source.isHome) throw fail('permission');
    const target = await this.#unfollowed(to);
    if (target.isHome) throw fail('permission');
    await this.#fs(() => fs.rename(source.entry, target.entry));
  }

  async chmod(vpath: VirtualPath, mode: number): Promise<void> {
    const r = await this.#existing(vpath);
    await this.#fs(() => fs.chmod(r.real, mode & 0o777));
  }

  async setMtime(vpath: VirtualPath, mtime: Date): Promise<void> {
    if (Number.isNaN(mtime.getTime())) throw fail('invalid-path');
    const r = await this.#existing(vpath);
    await this.#fs(async () => {
      const st = await fs.stat(r.real);
      await fs.utimes(r.real, st.atime, mtime);
    });
  }

  async available(vpath: VirtualPath): Promise<number> {
    const r = await this.#existing(vpath);
    const st = await this.#fs(() => fs.statfs(r.real, { bigint: true }));
    return Number(st.bavail * st.bsize);
  }

  // ---- the jail ----

  #displayName(vpath: VirtualPath): string {
    return vpath === '/' ? '/' : vpath.slice(vpath.lastIndexOf('/') + 1);
  }

  async #realHomePath(): Promise<string> {
    // Cached once known; a failure is not cached, so a home that reappears works again.
    this.#realHome ??= fs.realpath(this.#home).catch((error: unknown) => {
      this.#realHome = undefined;
      throw fail('io', error);
    });
    return this.#realHome;
  }

  /** Segments of a virtual path, re-checked: a VirtualPath can be forged with a cast. */
  #segments(vpath: VirtualPath): string[] {
    if (typeof vpath !== 'string' || !vpath.startsWith('/')) throw fail('invalid-path');
    const parts = segments(vpath);
    for (const part of parts) {
      if (part === '.' || part === '..' || /[\u0000-\u001f\u007f\\]/.test(part) || isTempName(part)) {
        throw fail('invalid-path');
      }
    }
    return parts;
  }

  /**
   * Real path of home + parts, refused unless inside the real home. When it
   * does not exist, the nearest existing ancestor decides between 'not-found'
   * and 'outside-jail', so a link pointing outside cannot be used to probe
   * which host paths exist.
   */
  async #realInside(parts: string[], realHome: string): Promise<string> {
    if (parts.length === 0) return realHome;
    let real: string;
    try {
      real = await fs.realpath(path.join(this.#home, ...parts));
    } catch (error) {
      throw await this.#diagnose(parts, realHome, error);
    }
    if (!isInside(real, realHome)) throw fail('outside-jail');
    return real;
  }

  async #diagnose(parts: string[], realHome: string, error: unknown): Promise<StorageError> {
    const code = errno(error);
    if (code === 'ELOOP') return fail('outside-jail', error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return toStorageError(error);
    for (let n = parts.length - 1; n >= 0; n--) {
      let ancestor: string;
      try {
        ancestor = await fs.realpath(path.join(this.#home, ...parts.slice(0, n)));
      } catch {
        continue;
      }
      if (!isInside(ancestor, realHome)) return fail('outside-jail');
      // The first missing component may be a dangling link: it could point anywhere.
      const next = await fs.lstat(path.join(ancestor, parts[n]!)).catch(() => null);
      if (next?.isSymbolicLink()) return fail('outside-jail');
      break;
    }
    return toStorageError(error);
  }

  async #resolve(vpath: VirtualPath): Promise<Resolved> {
    return this.#follow(await this.#unfollowed(vpath));
  }

  /** The entry with a link followed, refused unless what it points to is inside the home. */
  async #follow(r: Resolved): Promise<Resolved> {
    if (!r.lstat?.isSymbolicLink()) return r;
    let real: string;
    try {
      real = await fs.realpath(r.entry);
    } catch (error) {
      throw fail('outside-jail', error);
    }
    if (!isInside(real, await this.#realHomePath())) throw fail('outside-jail');
    return { ...r, real };
  }

  /**
   * The entry itself, a link not followed (`real` is `entry`): for what acts
   * on the name, not on what it points to (DELE, RNFR/RNTO, MLST of a link
   * that leads out).
   */
  async #unfollowed(vpath: VirtualPath): Promise<Resolved> {
    const { entry, realHome } = await this.#entryPath(vpath);
    if (entry === realHome) {
      const lstat = await this.#fs(() => fs.lstat(realHome, { bigint: true }));
      return { isHome: true, entry, real: entry, lstat };
    }
    let lstat: BigIntStats | null;
    try {
      lstat = await fs.lstat(entry, { bigint: true });
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw toStorageError(error);
      lstat = null;
    }
    return { isHome: false, entry, real: entry, lstat };
  }

  /**
   * Host path of the entry itself (the link, if it is one), its parent proved
   * inside the jail; the real home itself for '/'.
   */
  async #entryPath(vpath: VirtualPath): Promise<{ entry: string; realHome: string }> {
    const parts = this.#segments(vpath);
    const realHome = await this.#realHomePath();
    if (parts.length === 0) return { entry: realHome, realHome };
    const parentReal = await this.#realInside(parts.slice(0, -1), realHome);
    return { entry: path.join(parentReal, parts[parts.length - 1]!), realHome };
  }

  /**
   * A small file read whole on an fs worker: one message instead of four
   * thread-pool round trips. 'link' when the entry is one (ELOOP: the caller
   * resolves it inside the jail); undefined when the worker failed (the
   * caller opens the file itself).
   */
  async #readSmall(entry: string): Promise<SmallRead | 'link' | undefined> {
    try {
      return await fsWorkers.readSmall(entry, SMALL_FILE_BYTES);
    } catch (error) {
      const code = errno(error);
      if (code === 'ELOOP') return 'link';
      if (code) throw toStorageError(error);
      return undefined;
    }
  }

  /**
   * Opens `entry` (from #entryPath) to read without the lstat of #resolve:
   * O_NOFOLLOW makes the open itself tell a plain entry (opened) from a link
   * (ELOOP), and only a link takes the full resolve, which follows it inside
   * the jail or refuses it; `knownLink` (the fs worker already met ELOOP)
   * goes there at once. O_NONBLOCK: opening a FIFO would otherwise wait for a
   * writer forever.
   */
  async #openForReading(vpath: VirtualPath, entry: string, knownLink: boolean): Promise<FileHandle> {
    const flags = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
    if (!knownLink) {
      try {
        return await fs.open(entry, flags);
      } catch (error) {
        if (errno(error) !== 'ELOOP') throw toStorageError(error);
      }
    }
    const r = await this.#existing(vpath);
    return this.#fs(() => fs.open(r.real, flags));
  }

  async #existing(vpath: VirtualPath): Promise<Resolved> {
    return exists(await this.#resolve(vpath));
  }

  async #existingEntry(vpath: VirtualPath): Promise<Resolved> {
    return exists(await this.#unfollowed(vpath));
  }

  /**
   * Links in a listing, each replaced by what it points to when that is inside
   * the home (see #linkInfo). Only links need this jail check: anything else is
   * a child of a folder already proved inside.
   */
  async #resolveLinks(dirReal: string, links: FileInfo[]): Promise<FileInfo[]> {
    if (links.length === 0) return links;
    const realHome = await this.#realHomePath();
    const out: FileInfo[] = [];
    for (let i = 0; i < links.length; i += LIST_CONCURRENCY) {
      out.push(...(await Promise.all(links.slice(i, i + LIST_CONCURRENCY).map((link) => this.#linkInfo(dirReal, link, realHome)))));
    }
    return out;
  }

  /** A link in a listing: what it points to when that is inside the home, else the link itself. */
  async #linkInfo(dirReal: string, link: FileInfo, realHome: string): Promise<FileInfo> {
    const entry = path.join(dirReal, link.name);
    try {
      const real = await fs.realpath(entry);
      if (isInside(real, realHome)) return toInfo(link.name, await fs.stat(real, { bigint: true }));
    } catch {
      // dangling or looping: shown like a link pointing outside
    }
    return link;
  }

  async #fs<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      throw toStorageError(error);
    }
  }

  // ---- uploads ----

  /**
   * Fresh STOR: bytes go to a hidden temp file beside the target, renamed over
   * it on commit. Exclusive (STOU): linked to the name instead, which fails if
   * anything is there, so a file created meanwhile is never replaced.
   */
  async #openFresh(finalPath: string, exclusive: boolean): Promise<Upload> {
    const temp = path.join(path.dirname(finalPath), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`);
    const fh = await this.#fs(() => fs.open(temp, 'wx', 0o644));
    // Where the temp file is now: its folder may have been renamed while the upload ran.
    let at = temp;
    const locate = async (): Promise<void> => {
      at = (await openFilePath(fh, path.basename(temp))) ?? at;
    };
    return new LocalUpload(fh, 0, {
      async commit() {
        await fh.sync();
        await locate();
        await fh.close();
        if (!exclusive) return fs.rename(temp, finalPath);
        try {
          await fs.link(temp, finalPath);
        } catch (error) {
          // A filesystem without hard links (FAT, some FUSE): check, then rename, which leaves a short window.
          if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
          if (await fs.lstat(finalPath).then(() => true, () => false)) throw fail('exists');
          return fs.rename(temp, finalPath);
        }
        // The file is in place under its name: a temp name left behind must not fail the upload.
        await fs.unlink(temp).catch(() => undefined);
      },
      async discard() {
        await locate();
        await fh.close();
        await fs.unlink(at).catch(() => undefined);
      },
    });
  }

  /** REST+STOR (offset) or APPE (position null): the real file is changed in place. */
  async #openInPlace(realPath: string, offset: number | null, mode: 'r+' | 'a'): Promise<Upload> {
    const flags = (mode === 'a' ? C.O_WRONLY | C.O_APPEND : C.O_RDWR) | C.O_NOFOLLOW | C.O_NONBLOCK;
    // APPE creates a missing file; whether it did is kept, so a failed APPE that wrote nothing leaves
    // no empty file where there was none (O_EXCL tells, even against another session doing the same).
    let created = false;
    const open = async (): Promise<FileHandle> => {
      try {
        return await this.#fs(() => fs.open(realPath, flags, 0o644));
      } catch (error) {
        if (!(error instanceof StorageError && error.kind === 'not-found')) throw error;
        // Resuming a file that does not exist: its size is 0, so any offset lies past its end.
        if (offset !== null) throw fail('past-end');
      }
      try {
        const fh = await this.#fs(() => fs.open(realPath, flags | C.O_CREAT | C.O_EXCL, 0o644));
        created = true;
        return fh;
      } catch (error) {
        if (error instanceof StorageError && error.kind === 'exists') return this.#fs(() => fs.open(realPath, flags, 0o644));
        throw error;
      }
    };
    const fh = await open();
    let ino = 0n;
    try {
      const st = await fh.stat({ bigint: true });
      ino = st.ino;
      if (st.isDirectory()) throw fail('is-a-directory');
      if (!st.isFile()) throw fail('permission');
      if (offset !== null && offset > st.size) throw fail('past-end');
    } catch (error) {
      await fh.close();
      throw toStorageError(error);
    }
    return new LocalUpload(fh, offset, {
      async commit(position) {
        // REST+STOR replaces everything from the offset on: drop a longer old tail.
        if (position !== null) await fh.truncate(position);
        await fh.sync();
        await fh.close();
      },
      // The client asked for resume semantics: what was written stays, and a resumed STOR (REST)
      // that failed after writing is cut where its bytes end, as a completed one is, so a client
      // resuming from SIZE never takes an old tail for its own. One that wrote nothing (no data
      // connection, ABOR before the first byte) leaves the file as it was.
      async discard(position) {
        try {
          if (position !== null && offset !== null && position > offset) await fh.truncate(position);
          if (created && (await fh.stat()).size === 0) {
            // Only the file this APPE made, if it is still under its name.
            const now = await fs.lstat(realPath, { bigint: true }).catch(() => undefined);
            if (now?.ino === ino) await fs.unlink(realPath).catch(() => undefined);
          }
        } finally {
          await fh.close();
        }
      },
    });
  }
}

/**
 * The path of an open file as the kernel has it now (Linux: /proc/self/fd),
 * when its name is still `name`; undefined elsewhere, once closed, or when it
 * was deleted or renamed.
 */
async function openFilePath(fh: FileHandle, name: string): Promise<string | undefined> {
  if (fh.fd < 0) return undefined;
  const now = await fs.readlink(`/proc/self/fd/${fh.fd}`).catch(() => undefined);
  return now && path.basename(now) === name ? now : undefined;
}

interface UploadHooks {
  /** Make the bytes final; the handle is still open, and must be closed by the hook. */
  commit(position: number | null): Promise<void>;
  /**
   * Throw away what the upload left behind (`position`: where its bytes end,
   * null when appending). The handle may still be open, and is closed here.
   */
  discard(position: number | null): Promise<void>;
}

/**
 * Writes with explicit positions (pwrite), so offsets past 4 GiB are exact and
 * nothing depends on the file's seek pointer. A null position means append.
 */
class FileSink extends Writable implements ChunkReleasingSink, FileBackedSink {
  /** A write calls back once pwrite has copied the chunk into the file. */
  readonly releasesChunks = true;

  constructor(
    private readonly fh: FileHandle,
    public position: number | null,
  ) {
    super({ highWaterMark: IO_CHUNK });
  }

  fileTarget(): FileTarget {
    return { fd: this.fh.fd, position: this.position };
  }

  wroteDirectly(bytes: number): void {
    if (this.position !== null) this.position += bytes;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeAll(chunk).then(() => callback(), (error: unknown) => callback(toStorageError(error)));
  }

  /** Chunks that queued up while the last write was in flight go out in one writev. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#writeMany(chunks.map((c) => c.chunk)).then(() => callback(), (error: unknown) => callback(toStorageError(error)));
  }

  async #writeMany(buffers: Buffer[]): Promise<void> {
    const total = buffers.reduce((n, b) => n + b.length, 0);
    const { bytesWritten } = await this.fh.writev(buffers, this.position ?? undefined);
    if (this.position !== null) this.position += bytesWritten;
    if (bytesWritten < total) await this.#writeAll(Buffer.concat(buffers).subarray(bytesWritten));
  }

  async #writeAll(chunk: Buffer): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, done, chunk.length - done, this.position);
      done += bytesWritten;
      if (this.position !== null) this.position += bytesWritten;
    }
  }
}

/**
 * One upload's lifecycle. The handle is closed exactly once on every path:
 * commit, abort, or the stream being destroyed (client gone, disk full) before
 * it finished, which aborts on its own so a caller that forgets cannot leak.
 */
class LocalUpload implements Upload {
  readonly stream: FileSink;
  #failure: StorageError | undefined;
  #settled: Promise<void> | undefined;

  constructor(
    private readonly fh: FileHandle,
    position: number | null,
    private readonly hooks: UploadHooks,
  ) {
    this.stream = new FileSink(fh, position);
    // Keeps a write error from crashing the process when nobody listens; commit() reports it.
    this.stream.on('error', (error: unknown) => {
      this.#failure ??= toStorageError(error);
    });
    this.stream.on('close', () => {
      if (!this.stream.writableFinished) void this.abort();
    });
  }

  commit(): Promise<void> {
    if (this.#settled) return Promise.reject(this.#failure ?? fail('io'));
    this.#settled = this.#commit();
    return this.#settled;
  }

  abort(): Promise<void> {
    this.#settled ??= (async () => {
      this.stream.destroy();
      await this.hooks.discard(this.stream.position).catch(() => undefined);
      await this.fh.close().catch(() => undefined);
    })();
    return this.#settled.catch(() => undefined);
  }

  async #commit(): Promise<void> {
    try {
      if (!this.stream.writableEnded) this.stream.end();
      await finished(this.stream);
      if (this.#failure) throw this.#failure;
      await this.hooks.commit(this.stream.position);
    } catch (error) {
      this.#failure ??= toStorageError(error);
      this.stream.destroy();
      await this.hooks.discard(this.stream.position).catch(() => undefined);
      await this.fh.close().catch(() => undefined);
      throw this.#failure;
    }
  }
}
