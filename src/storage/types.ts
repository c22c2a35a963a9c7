import type { Readable, Writable } from 'node:stream';

/**
 * A path as the FTP client sees it: absolute, '/'-separated, normalised, never
 * containing '.', '..', empty segments or NUL. Only `vpath.ts` may mint one, so a
 * host path can never be passed where a client path is expected (or the reverse).
 */
export type VirtualPath = string & { readonly __brand: 'VirtualPath' };

export type FileKind = 'file' | 'dir' | 'link' | 'other';

export interface FileInfo {
  /** Last path segment (for listings). */
  name: string;
  kind: FileKind;
  /** Bytes; a JS number is exact up to 8 PiB, so files past 4 GiB are safe. */
  size: number;
  mtime: Date;
  /** POSIX permission bits (e.g. 0o644). */
  mode: number;
  /** Stable identity for MLSD `unique` (device and inode on local disks). */
  unique: string;
  nlink: number;
}

/** The closed set of storage failures; each maps to exactly one FTP reply. */
export type StorageErrorKind =
  | 'not-found'
  | 'exists'
  | 'not-a-directory'
  | 'is-a-directory'
  | 'not-empty'
  | 'busy'
  | 'permission'
  | 'no-space'
  | 'quota'
  | 'invalid-path'
  | 'name-too-long'
  | 'past-end'
  | 'outside-jail'
  | 'io';

export class StorageError extends Error {
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

export interface WriteOptions {
  /** Byte offset to start writing at (REST before STOR). Keeps existing bytes before it. */
  offset?: number;
  /** Append to an existing file (APPE). */
  append?: boolean;
  /**
   * Never replace a file (STOU): if one appeared under the name since the
   * upload began, commit fails with 'exists' and the upload is discarded.
   */
  exclusive?: boolean;
}

/**
 * Optional capability of a download's stream: it writes its bytes into `sink`
 * itself, faster than through its Readable side (LocalStorage uses sendfile(2)
 * on plain sockets, else two reused buffers). Settles when the last chunk has been taken by the sink; rejects on
 * a read or write error, or as soon as `signal` aborts. Always releases the source;
 * memory still queued on the sink after an abort is released when the sink
 * closes, so a caller must close (destroy) the sink after a failed send.
 */
export interface DirectSource {
  sendTo(sink: Writable, signal: AbortSignal, progress: (bytes: number) => void): Promise<void>;
}

/** A file opened for download. */
export interface Download {
  /** The file's size when it was opened: what the 150 reply announces and the most `stream` yields. */
  size: number;
  /**
   * The bytes from the start offset on (empty when the offset is at or past the end);
   * it may also implement DirectSource.
   */
  stream: Readable;
}

/**
 * An upload in progress. Bytes go to `stream`; `commit()` makes them visible under
 * the final name (atomic rename for a fresh STOR), `abort()` discards them (a fresh
 * STOR leaves nothing behind; a resumed one keeps what was written, as the client
 * asked for resume semantics).
 */
export interface Upload {
  stream: Writable;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Optional capability of an upload's stream: a write's callback means the
 * chunk's memory is no longer needed (it was written out, not kept by
 * reference), so the receiver may refill the same buffer at once. Only then
 * does a plain upload read the socket into reused buffers; other sinks get
 * fresh chunks.
 */
export interface ChunkReleasingSink {
  readonly releasesChunks: true;
}

/** Where the next byte of an upload goes in its file (see FileBackedSink). */
export interface FileTarget {
  fd: number;
  /** The next byte's position; null: at the file's end (O_APPEND). */
  position: number | null;
}

/**
 * Optional capability of an upload's stream (with ChunkReleasingSink): its
 * bytes go to a file a helper thread may write to directly. `fileTarget` is
 * asked only while no write is pending; `wroteDirectly` then says how many
 * bytes were written there, so the stream's own position follows.
 */
export interface FileBackedSink {
  fileTarget(): FileTarget;
  wroteDirectly(bytes: number): void;
}

/**
 * A folder's entries as one packed table, sorted by name: `names[i]`,
 * `uniques[i]` (the MLSD unique fact) and five numbers per entry in `nums`:
 * kind (0 file, 1 dir, 2 link, 3 other; -1 for an entry gone since it was
 * read), size, mtime in ms, mode, nlink. A large listing then costs no object
 * per entry, which young-generation collections would otherwise copy.
 */
export interface EntryTable {
  names: string[];
  uniques: string[];
  nums: Float64Array;
}

/**
 * Optional capability of a Storage: `list` as an EntryTable, with the same
 * entries (links resolved the same way), used instead of `list` when present.
 */
export interface TableListing {
  listTable(path: VirtualPath, options?: { limit?: number }): Promise<EntryTable>;
}

/**
 * Where one user's bytes live. Every method takes virtual paths relative to the
 * user's home ('/' is the home). Implementations must keep every operation inside
 * the home (the jail) and reject with StorageError.
 */
export interface Storage {
  stat(path: VirtualPath): Promise<FileInfo>;
  /** Entries of a directory, without '.' and '..'. */
  list(path: VirtualPath, options?: { limit?: number }): Promise<FileInfo[]>;
  read(path: VirtualPath, options?: { start?: number }): Promise<Download>;
  write(path: VirtualPath, options?: WriteOptions): Promise<Upload>;
  mkdir(path: VirtualPath): Promise<void>;
  rmdir(path: VirtualPath): Promise<void>;
  delete(path: VirtualPath): Promise<void>;
  rename(from: VirtualPath, to: VirtualPath): Promise<void>;
  /** Optional capability: SITE CHMOD. */
  chmod?(path: VirtualPath, mode: number): Promise<void>;
  /** Optional capability: MFMT. */
  setMtime?(path: VirtualPath, mtime: Date): Promise<void>;
  /** Optional capability: free bytes for AVBL/ALLO. */
  available?(path: VirtualPath): Promise<number>;
}
