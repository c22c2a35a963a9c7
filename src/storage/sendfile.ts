import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { PrematureClose } from '../data/copy.js';
import { errnoError } from '../data/socket-error.js';
import { nativeHelper } from './native.js';

/** Threads a process runs at once; past that, downloads take the buffered path. */
const MAX_JOBS = 64;
/** How often a running send reports progress (the stall watchdog counts in seconds). */
const PROGRESS_MS = 250;

let jobs = 0;
let started = 0;

/** Sends running now and started since the process began (for tests and diagnostics). */
export function sendfileJobs(): { running: number; started: number } {
  return { running: jobs, started };
}

/** The descriptor of a plain TCP socket that nothing else is writing to, or -1. */
function plainSocketFd(sink: Writable): number {
  if (!(sink instanceof Socket) || (sink as Socket & { encrypted?: boolean }).encrypted) return -1;
  if (sink.destroyed || sink.writableEnded || sink.writableLength > 0 || sink.writableCorked > 0) return -1;
  const fd = (sink as Socket & { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
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
  const socketFd = native && jobs < MAX_JOBS && !signal.aborted ? plainSocketFd(sink) : -1;
  if (socketFd < 0) return undefined;
  let finish: (errno: number, sent: number) => void = () => undefined;
  let handle: object;
  try {
    handle = native!.start(socketFd, fileFd, offset, length, (errno, sent) => finish(errno, sent));
  } catch {
    // Out of descriptors or threads: nothing was sent, the buffered path may still manage.
    return undefined;
  }
  jobs++;
  started++;
  return new Promise((resolve, reject) => {
    let reported = 0;
    const report = (sent: number): void => {
      if (sent > reported) progress(sent - reported);
      reported = sent;
    };
    let sinkClosed = false;
    const stop = (): void => native!.cancel(handle);
    const onClose = (): void => {
      sinkClosed = true;
      stop();
    };
    const ticker = setInterval(() => report(native!.sent(handle)), PROGRESS_MS);
    signal.addEventListener('abort', stop, { once: true });
    // The socket destroyed under the thread (the client left, a timeout): stop at once.
    sink.once('close', onClose);
    finish = (errno, sent) => {
      jobs--;
      clearInterval(ticker);
      signal.removeEventListener('abort', stop);
      sink.off('close', onClose);
      report(sent);
      if (signal.aborted) reject(signal.reason ?? new Error('aborted'));
      else if (errno !== 0) reject(errnoError(errno, 'sendfile'));
      else if (sinkClosed && sent < length) reject(sink.errored ?? new PrematureClose('socket closed before the last byte was sent'));
      else resolve(sent);
    };
  });
}
