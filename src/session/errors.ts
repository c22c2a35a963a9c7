import { StorageError, type StorageErrorKind } from '../storage/types.js';
import { FtpError } from './reply.js';

const STORAGE_REPLIES: Record<StorageErrorKind, [number, string]> = {
  'not-found': [550, 'No such file or directory.'],
  exists: [550, 'File exists.'],
  'not-a-directory': [550, 'Not a directory.'],
  'is-a-directory': [550, 'Is a directory.'],
  'not-empty': [550, 'Directory not empty.'],
  busy: [450, 'Directory not empty: an upload into it is in progress.'],
  permission: [550, 'Permission denied.'],
  'no-space': [452, 'Insufficient storage space.'],
  quota: [552, 'Quota exceeded.'],
  'invalid-path': [553, 'File name not allowed.'],
  'name-too-long': [553, 'File name too long.'],
  'past-end': [554, 'Restart offset beyond end of file.'],
  'outside-jail': [550, 'Permission denied.'],
  io: [451, 'Local error in processing.'],
};

/**
 * Map any failure to the FtpError the client sees. Unknown errors become 451
 * with a fixed text: their messages (errno strings, host paths) stay in the log.
 */
export function toFtpError(error: unknown): FtpError {
  if (error instanceof FtpError) return error;
  // An embedder's storage may throw a kind this version does not know: a local error, not a crash.
  if (error instanceof StorageError && Object.hasOwn(STORAGE_REPLIES, error.kind)) {
    const [code, text] = STORAGE_REPLIES[error.kind];
    return new FtpError(code, text, { cause: error, logReason: `${error.kind}: ${error.message}` });
  }
  const logReason = error instanceof StorageError ? `storage error of unknown kind ${String(error.kind)}: ${error.message}` : 'internal error';
  return new FtpError(451, 'Local error in processing.', { cause: error, logReason });
}
