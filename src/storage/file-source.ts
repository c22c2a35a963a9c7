import type { FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { transferBuffers } from './buffer-budget.js';
import { toStorageError } from './errors.js';
import { sendfile } from './sendfile.js';
import type { DirectSource } from './types.js';

/** Bytes per read of the Readable side (TYPE A, embedders). */
const STREAM_CHUNK = 1024 * 1024;
/**
 * Buffer size of the direct path. Measured on loopback (1 GiB from tmpfs, same
 * session): 1 MiB gave 1.9–2.4 GB/s, 4 MiB 2.4–3.4 GB/s, 8 MiB 2.1–2.6 GB/s
 * (docs/performance.md): fewer, larger socket writes and thread-pool reads.
 */
const MAX_CHUNK = 4 * 1024 * 1024;

/**
 * The bytes [start, end) of an open file. As a Readable it allocates a buffer
 * per read, as streams must (a pushed chunk belongs to the consumer). `sendTo`
 * is the fast path for a transfer: sendfile(2) on a helper thread when the
 * sink is a plain socket and the native helper is there, else two buffers,
 * reused, the next read running while the last chunk is written, so a 1 GiB
 * download allocates 8 MiB, not 1 GiB of garbage, and a shared budget bounds
 * what many downloads hold at once. The handle is closed once, when the stream is destroyed (at its end,
 * on error, or by the caller).
 */
export class FileSource extends Readable implements DirectSource {
  #position: number;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    private readonly end: number,
    /** Whether `sendTo` may use sendfile(2) when the sink is a plain socket. */
    private readonly useSendfile = false,
  ) {
    super();
    this.#position = start;
  }

  override _read(): void {
    const length = Math.min(STREAM_CHUNK, this.end - this.#position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafeSlow(length);
    this.#readInto(buffer).then(
      (n) => this.push(n === 0 ? null : n === length ? buffer : buffer.subarray(0, n)),
      (error: unknown) => this.destroy(toStorageError(error)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.fh.close().then(
      () => callback(error),
      (closeError: unknown) => callback(error ?? (closeError as Error)),
    );
  }

  async sendTo(sink: Writable, signal: AbortSignal, progress: (bytes: number) => void): Promise<void> {
    const direct = this.useSendfile ? sendfile(sink, this.fh.fd, this.#position, this.end - this.#position, signal, progress) : undefined;
    if (direct) {
      try {
        this.#position += await direct;
      } finally {
        this.destroy();
      }
      return;
    }
    const size = transferBuffers.take(Math.min(MAX_CHUNK, this.end - this.#position), 2);
    // The second buffer only exists once a second chunk does: a small file costs one buffer
    // (the budget counts two either way, for the moment the second appears).
    const buffers: Buffer[] = size > 0 ? [Buffer.allocUnsafeSlow(size)] : [];
    const other = (i: number): Buffer => (buffers[i % 2] ??= Buffer.allocUnsafeSlow(size));
    const { aborted, release } = abortion(signal);
    try {
      let next = settled(buffers.length ? this.#readInto(buffers[0]!) : Promise.resolve(0));
      for (let i = 0; ; i++) {
        const filled = await Promise.race([next, aborted]);
        if (filled === 0) break;
        const written = settled(writeChunk(sink, buffers[i % 2]!.subarray(0, filled)));
        progress(filled);
        // The other buffer is free: its write completed before this iteration began.
        next = settled(this.#position < this.end ? this.#readInto(other(i + 1)) : Promise.resolve(0));
        await Promise.race([written, aborted]);
      }
    } finally {
      release();
      transferBuffers.release(2 * size);
      this.destroy();
    }
  }

  /** Fills `buffer` from the current position (less at the end of the range, 0 past EOF). */
  async #readInto(buffer: Buffer): Promise<number> {
    const length = Math.min(buffer.length, this.end - this.#position);
    const position = this.#position;
    this.#position += length;
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.fh.read(buffer, 0, length, position));
    } catch (error) {
      throw toStorageError(error);
    }
    // A file that shrank since it was opened ends early; nothing past `end` is read.
    if (bytesRead < length) this.#position = this.end;
    return bytesRead;
  }
}

/**
 * A download already in memory (a small file that an fs worker read whole):
 * one chunk, one write. `release` hands the memory back (a slot of the fs
 * workers' shared slab) once nothing can read it any more: after the write
 * went out, when the sink closed (a write cut short is never sent), or when
 * the source is dropped unread. The Readable side pushes a copy, which the
 * consumer may keep.
 */
export class BufferSource extends Readable implements DirectSource {
  constructor(
    private data: Buffer | undefined,
    private release: (() => void) | undefined = undefined,
  ) {
    super();
  }

  override _read(): void {
    const data = this.data;
    this.data = undefined;
    if (data?.length) this.push(this.release ? Buffer.from(data) : data);
    this.#free();
    this.push(null);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.data) this.#free();
    this.data = undefined;
    callback(error);
  }

  async sendTo(sink: Writable, signal: AbortSignal, progress: (bytes: number) => void): Promise<void> {
    const data = this.data;
    this.data = undefined;
    const { aborted, release } = abortion(signal);
    let sent = true;
    try {
      if (!data?.length) return;
      sent = false;
      await Promise.race([settled(writeChunk(sink, data)), aborted]);
      sent = true;
      progress(data.length);
    } finally {
      release();
      if (sent || sink.destroyed) this.#free();
      else sink.once('close', () => this.#free());
      this.destroy();
    }
  }

  #free(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}

/**
 * `aborted` rejects with the abort reason once `signal` aborts (at once if it
 * has); `release` stops listening, for a sender that finished first.
 */
function abortion(signal: AbortSignal): { aborted: Promise<never>; release: () => void } {
  let onAbort = (): void => undefined;
  const aborted = settled(
    new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason ?? new Error('aborted'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }),
  );
  return { aborted, release: () => signal.removeEventListener('abort', onAbort) };
}

/** Marks `p` as handled: what is still pending when a sender bails out settles later with nobody awaiting it. */
function settled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Resolves once `sink` has handed the chunk on (so its buffer may be reused), rejects on failure. */
function writeChunk(sink: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sink.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}
