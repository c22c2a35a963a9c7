import type { Readable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { nativeHelper } from '../storage/native.js';

/** An Error for a positive errno, shaped like Node's own (`code`, negative `errno`, `syscall`). */
export function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`${syscall}: ${code}`), { code, errno: -errno, syscall });
}

/**
 * The reset behind a socket's clean-looking end, if there was one: libuv
 * reports a reset that lands while data is still queued as an end (see
 * native/socket.c), and an upload must not take that for the client's FIN.
 * Undefined for a real end, for streams that are not sockets, and where the
 * native helper is not built (there the two cannot be told apart).
 */
export function hiddenSocketError(stream: Readable): NodeJS.ErrnoException | undefined {
  const fd = (stream as Readable & { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  const errno = nativeHelper()?.socketError(fd) ?? 0;
  return errno === 0 ? undefined : errnoError(errno, 'read');
}
