import type { Readable, Writable } from 'node:stream';
import type { DirectSource } from '../storage/types.js';
import { hiddenSocketError } from './socket-error.js';

export class PrematureClose extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
}

type Listener = [Readable | Writable, string, Parameters<Readable['on']>[1]];

/**
 * The end of a copy from `source` to `sink`, shared by `copy()` and the
 * upload receiver: `done()` runs once, with no error when the source ended,
 * or with the first failure (either stream erroring or closing early,
 * `signal` aborting), which also destroys the source. Every listener,
 * `extra` included, is removed first. Returns whether it has already run,
 * for callers that must stop as soon as it has (a progress callback can
 * destroy the source mid-chunk).
 */
export function watchCopy(
  source: Readable,
  sink: Writable,
  signal: AbortSignal,
  extra: Listener[],
  done: (error?: Error) => void,
): () => boolean {
  let settled = false;
  const settle = (error?: unknown): void => {
    if (settled) return;
    settled = true;
    for (const [emitter, event, listener] of listeners) emitter.off(event, listener);
    signal.removeEventListener('abort', onAbort);
    if (error === undefined) done();
    else {
      source.destroy();
      done(error instanceof Error ? error : new Error(String(error)));
    }
  };
  const onAbort = (): void => settle(signal.reason ?? new Error('aborted'));
  const listeners: Listener[] = [
    ...extra,
    // A socket's end may hide a reset (see hiddenSocketError): a cut upload then fails instead of committing.
    [source, 'end', () => settle(hiddenSocketError(source))],
    [source, 'error', settle],
    [sink, 'error', settle],
    [source, 'close', () => settle(new PrematureClose('source closed before its end'))],
    [sink, 'close', () => settle(new PrematureClose('sink closed before the source ended'))],
  ];
  const isSettled = (): boolean => settled || source.destroyed;
  if (signal.aborted) {
    onAbort();
    return isSettled;
  }
  for (const [emitter, event, listener] of listeners) emitter.on(event, listener);
  signal.addEventListener('abort', onAbort, { once: true });
  return isSettled;
}

/**
 * Moves every byte of `source` into `sink`, honouring the sink's backpressure,
 * and settles once the source has ended and its last chunk was handed to the
 * sink, which may still be flushing it: ending the sink and waiting for that is
 * the caller's job (the transfer's closeData, an upload's commit). A source
 * that implements DirectSource sends itself.
 *
 * Why not `stream.pipeline`: it builds an AbortController, end-of-stream
 * watchers and an AbortError (with a stack) per call, which is most of the
 * JavaScript cost of sending a 64 KiB file; this does the same job with
 * listeners only. Failures (either stream erroring or closing early, or
 * `signal` aborting) destroy the source and reject.
 */
export function copy(source: Readable, sink: Writable, signal: AbortSignal, progress: (bytes: number) => void): Promise<void> {
  const direct = (source as Readable & Partial<DirectSource>).sendTo;
  if (typeof direct === 'function') return direct.call(source, sink, signal, progress);
  return new Promise<void>((resolve, reject) => {
    const stopped = watchCopy(
      source,
      sink,
      signal,
      [
        [
          source,
          'data',
          (chunk: Buffer): void => {
            // May end the copy (an upload over its size limit destroys the source): then the chunk stays out.
            progress(chunk.length);
            if (stopped()) return;
            if (!sink.write(chunk)) source.pause();
          },
        ],
        [sink, 'drain', () => source.resume()],
      ],
      (error) => (error ? reject(error) : resolve()),
    );
  });
}
