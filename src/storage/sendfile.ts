import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { PrematureClose } from '../data/copy.js';
import { errnoError } from '../data/socket-error.js';
import { overUploadLimit, toStorageError } from './errors.js';
import { nativeHelper, type NativeHelper } from './native.js';
import type { FileTarget } from './types.js';

/** Threads a process runs at once (downloads and uploads together); past that, transfers take the buffered paths. */
const MAX_JOBS = 64;
/** How often a running job reports progress (the stall watchdog counts in seconds). */
const PROGRESS_MS = 250;
/** native/sendfile.c's receive flags. */
const PAST_LIMIT = 1;
const FILE_ERROR = 2;
const END = 4;

let jobs = 0;
let started = 0;

/** Native transfer threads running now and started since the process began (for tests and diagnostics). */
export function transferThreads(): { running: number; started: number } {
  return { running: jobs, started };
}

/** The descriptor of a plain (not TLS) TCP socket, or -1. */
function plainSocketFd(socket: Readable | Writable): number {
  if (!(socket instanceof Socket) || (socket as Socket & { encrypted?: boolean }).encrypted || socket.destroyed) return -1;
  const fd = (socket as Socket & { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

interface Finished {
  errno: number;
  moved: number;
  flags: number;
  /** The socket was closed under the thread (the client left, a timeout). */
  socketClosed: boolean;
}

/**
 * Runs one native job (see native/sendfile.c) to its end: `progress` as bytes
 * move, the job cancelled when `signal` aborts or `socket` closes, and the
 * thread's report handed to `settle`, whose result (or throw) the promise
 * takes unless `signal` aborted (then its reason). Undefined, having done
 * nothing, when no thread could be had.
 */
function runJob<T>(
  native: NativeHelper,
  socket: Socket,
  signal: AbortSignal,
  progress: (bytes: number) => void,
  startJob: (done: (errno: number, moved: number, flags?: number) => void) => object,
  settle: (end: Finished) => T,
): Promise<T> | undefined {
  if (jobs >= MAX_JOBS || signal.aborted) return undefined;
  let finish: (errno: number, moved: number, flags?: number) => void = () => undefined;
  let handle: object;
  try {
    handle = startJob((errno, moved, flags) => finish(errno, moved, flags));
  } catch {
    // Out of descriptors or threads: nothing moved, the buffered path may still manage.
    return undefined;
  }
  jobs++;
  started++;
  return new Promise<T>((resolve, reject) => {
    let reported = 0;
    const report = (moved: number): void => {
      if (moved > reported) progress(moved - reported);
      reported = moved;
    };
    let socketClosed = false;
    const stop = (): void => native.cancel(handle);
    const onClose = (): void => {
      socketClosed = true;
      stop();
    };
    const ticker = setInterval(() => report(native.sent(handle)), PROGRESS_MS);
    signal.addEventListener('abort', stop, { once: true });
    socket.once('close', onClose);
    finish = (errno, moved, flags = 0) => {
      jobs--;
      clearInterval(ticker);
      signal.removeEventListener('abort', stop);
      socket.off('close', onClose);
      report(moved);
      // settle runs on every end (a receive's `wrote` must hear of the bytes an abort left in the file); an abort wins.
      let result: T;
      try {
        result = settle({ errno, moved, flags, socketClosed });
      } catch (error) {
        reject(signal.aborted ? (signal.reason ?? new Error('aborted')) : error);
        return;
      }
      if (signal.aborted) reject(signal.reason ?? new Error('aborted'));
      else resolve(result);
    };
  });
}

/**
 * Sends `length` bytes of `fileFd` from `offset` into `sink` with sendfile(2)
 * on a helper thread: the bytes go from the page cache to the socket without
 * passing through JavaScript. Resolves with the bytes sent (fewer if the file
 * shrank), rejects with the socket's errno (EPIPE, ECONNRESET…) or the abort
 * reason; `progress` is called as bytes leave. Returns undefined, having done
 * nothing, when this sink or process cannot take the fast path: the caller
 * then sends through buffers.
 */
export function sendfile(
  sink: Writable,
  fileFd: number,
  offset: number,
  length: number,
  signal: AbortSignal,
  progress: (bytes: number) => void,
): Promise<number> | undefined {
  const native = nativeHelper();
  const idle = sink.writableLength === 0 && sink.writableCorked === 0 && !sink.writableEnded;
  const socketFd = native && idle ? plainSocketFd(sink) : -1;
  if (socketFd < 0) return undefined;
  return runJob(
    native!,
    sink as Socket,
    signal,
    progress,
    (done) => native!.start(socketFd, fileFd, offset, length, done),
    ({ errno, moved, socketClosed }) => {
      if (errno !== 0) throw errnoError(errno, 'sendfile');
      if (socketClosed && moved < length) throw sink.errored ?? new PrematureClose('socket closed before the last byte was sent');
      return moved;
    },
  );
}

/**
 * An upload's bytes from the plain TCP socket `source` straight into `file`
 * on a helper thread (read, then write, 512 KiB at a time), until the client
 * ends the connection. At most `room` bytes are written: a read that would
 * pass it is not, and the promise rejects with the quota error (552). Resolves
 * with the bytes written, which `wrote` hears of first on every end, aborts
 * included; rejects with the socket's errno (a reset is ECONNRESET, never an
 * end), a StorageError for the file's (ENOSPC…), or the abort reason. Undefined, having done nothing, when the socket or process
 * cannot take this path. Nobody else may read the socket meanwhile.
 */
export function receiveIntoFile(
  source: Readable,
  file: FileTarget,
  room: number,
  signal: AbortSignal,
  progress: (bytes: number) => void,
  wrote: (bytes: number) => void,
): Promise<number> | undefined {
  const native = nativeHelper();
  const socketFd = typeof native?.receive === 'function' ? plainSocketFd(source) : -1;
  if (socketFd < 0) return undefined;
  const limit = Number.isFinite(room) ? Math.max(0, room) : -1;
  return runJob(
    native!,
    source as Socket,
    signal,
    progress,
    (done) => native!.receive(socketFd, file.fd, file.position ?? -1, limit, done),
    ({ errno, moved, flags, socketClosed }) => {
      // Whatever the end, these bytes are in the file (a failed resume is cut after them).
      wrote(moved);
      if (flags & PAST_LIMIT) throw overUploadLimit();
      if (errno !== 0) throw flags & FILE_ERROR ? toStorageError(errnoError(errno, 'write')) : errnoError(errno, 'read');
      // The client's end, read by the thread: every byte before it is in the file (Node may have closed the socket since).
      if (flags & END) return moved;
      // Stopped before the end: the socket was closed under the thread (a timeout, the session ending).
      throw new PrematureClose(socketClosed ? 'socket closed before the upload ended' : 'upload stopped before its end');
    },
  );
}
