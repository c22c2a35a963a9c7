import { StorageError, type FileInfo, type Storage, type StorageErrorKind, type VirtualPath } from './types.js';

/** Fixed texts per kind: errno messages carry host paths, so they stay in `cause` for the log. */
const MESSAGES: Record<StorageErrorKind, string> = {
  'not-found': 'no such file or directory',
  exists: 'already exists',
  'not-a-directory': 'not a directory',
  'is-a-directory': 'is a directory',
  'not-empty': 'directory not empty',
  busy: 'in use by a transfer in progress',
  permission: 'permission denied',
  'no-space': 'no space left on device',
  quota: 'disk quota exceeded',
  'invalid-path': 'invalid path',
  'name-too-long': 'file name too long',
  'past-end': 'offset beyond end of file',
  'outside-jail': 'path leaves the home folder',
  io: 'input/output error',
};

const ERRNO_KINDS: Record<string, StorageErrorKind> = {
  ENOENT: 'not-found',
  EEXIST: 'exists',
  ENOTDIR: 'not-a-directory',
  EISDIR: 'is-a-directory',
  ENOTEMPTY: 'not-empty',
  EACCES: 'permission',
  EPERM: 'permission',
  ENOSPC: 'no-space',
  EDQUOT: 'quota',
  EFBIG: 'quota',
  EROFS: 'permission',
  ENAMETOOLONG: 'name-too-long',
  // rename(2) of a folder into itself, and other requests the file system cannot express.
  EINVAL: 'invalid-path',
};

export function fail(kind: StorageErrorKind, cause?: unknown): StorageError {
  return new StorageError(kind, MESSAGES[kind], cause === undefined ? undefined : { cause });
}

/** An upload that would take its file past limits.max_upload_size (552). */
export function overUploadLimit(): StorageError {
  return new StorageError('quota', 'upload larger than max_upload_size');
}

/** Turn any failure from node:fs into a StorageError whose message holds no host path. */
export function toStorageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return fail((code && ERRNO_KINDS[code]) || 'io', error);
}

/** The entry at `path`, or undefined when there is none (any other failure is thrown). */
export async function statIfExists(storage: Storage, path: VirtualPath): Promise<FileInfo | undefined> {
  try {
    return await storage.stat(path);
  } catch (error) {
    if (error instanceof StorageError && error.kind === 'not-found') return undefined;
    throw error;
  }
}

export function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

