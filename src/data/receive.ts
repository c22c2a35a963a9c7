import { Socket } from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { transferBuffers } from '../storage/buffer-budget.js';
import { overUploadLimit } from '../storage/errors.js';
import { receiveIntoFile } from '../storage/sendfile.js';
import type { ChunkReleasingSink, FileBackedSink } from '../storage/types.js';
import { copy, watchCopy } from './copy.js';

/**
 * Why this reaches into Node's socket internals: a plain socket accepted by a
 * server is read 64 KiB at a time into fresh buffers, and every read wakes the
 * sender with a window update. Reading into our own large buffers doubles what
 * an upload can take on loopback (1.1 → 1.8 GB/s into tmpfs, measured:
 * docs/performance.md). Node 20 offers that (`onread`) only for sockets it
 * connects; the same state exists on every socket under private symbols, which
 * are looked up once here. Without them (another Node) uploads take `copy()`.
 */
interface UserBufferKeys {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

interface TcpHandle {
  reading: boolean;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
}

const keys = findKeys();

/** Whether this Node lets uploads read into reused buffers (tests check it stays true on the supported Node). */
export const userBufferReads = keys !== undefined;

function findKeys(): UserBufferKeys | undefined {
  const probe = new Socket();
  const byName = new Map(Object.getOwnPropertySymbols(probe).map((s) => [s.description, s]));
  probe.destroy();
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  return buffer && callback && generator ? { buffer, callback, generator } : undefined;
}

/** Buffers in the ring: one being filled by the socket while up to two are written out. */
const RING = 3;
/** First buffer size; it doubles while reads fill whole buffers, so a small upload stays small. */
const FIRST = 64 * 1024;
const MAX = 4 * 1024 * 1024;

/**
 * Moves an upload's bytes from the data connection into `sink`, with the
 * contract of `copy()`: settles once the source has ended and its last chunk
 * was handed to the sink. A plain TCP socket feeding a file-backed sink is
 * read and written by a native thread (see receiveDirect); one feeding any
 * other sink that releases its chunks is read straight into a ring of reused
 * buffers; anything else (TLS, sinks that keep chunks) goes through `copy()`.
 * `room` (bytes the file may still take) is enforced only by the native
 * thread, which must stop before writing past it; on the other paths
 * `progress` is where the caller counts.
 */
export async function receive(source: Duplex, sink: Writable, signal: AbortSignal, progress: (bytes: number) => void, room = Infinity): Promise<void> {
  const handle = (source as Duplex & { _handle?: Partial<TcpHandle> | null })._handle;
  const eligible =
    keys !== undefined &&
    source instanceof Socket &&
    !(source instanceof TLSSocket) &&
    (sink as Writable & Partial<ChunkReleasingSink>).releasesChunks === true &&
    typeof handle?.useUserBuffer === 'function' &&
    !source.destroyed &&
    !source.readableEnded;
  if (!eligible) return copy(source, sink, signal, progress);
  const fileBacked = typeof (sink as Writable & Partial<FileBackedSink>).fileTarget === 'function';
  if (fileBacked && (await receiveDirect(source, handle as TcpHandle, sink as Writable & FileBackedSink, room, signal, progress))) return;
  return new RingReceiver(source, handle as TcpHandle, keys, sink, signal, progress).run();
}

/**
 * The upload on a native thread (storage/sendfile.ts, receiveIntoFile): Node
 * stops reading the socket, what it had read already goes through the sink
 * first, then the thread reads the rest into the sink's file. False, having
 * only stopped the reading (the ring resumes it), when no thread could be had.
 */
async function receiveDirect(
  socket: Socket,
  handle: TcpHandle,
  sink: Writable & FileBackedSink,
  room: number,
  signal: AbortSignal,
  progress: (bytes: number) => void,
): Promise<boolean> {
  // What Node has read already goes first. Reading it may restart Node's reading (read() refills the
  // buffer), which is stopped again before the event loop can run: only the thread reads from here on.
  const early: Buffer[] = [];
  for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) early.push(chunk);
  if (handle.reading) {
    handle.reading = false;
    handle.readStop();
  }
  for (const chunk of early) {
    if (chunk.length > room) throw overUploadLimit();
    room -= chunk.length;
    progress(chunk.length);
    await new Promise<void>((resolve, reject) => sink.write(chunk, (error) => (error ? reject(error) : resolve())));
    if (signal.aborted) throw signal.reason ?? new Error('aborted');
  }
  const job = receiveIntoFile(socket, sink.fileTarget(), room, signal, progress, (bytes) => sink.wroteDirectly(bytes));
  if (!job) return false;
  await job;
  return true;
}

class RingReceiver {
  readonly #buffers: Buffer[] = [];
  readonly #busy: boolean[] = new Array<boolean>(RING).fill(false);
  /** The slot the socket reads into next. */
  #slot = 0;
  #target = FIRST;
  #held = 0;
  /** Reading is stopped until the buffer in `#slot` has been written out. */
  #stopped = false;
  #settled: () => boolean = () => false;

  constructor(
    private readonly socket: Socket,
    private readonly handle: TcpHandle,
    private readonly keys: UserBufferKeys,
    private readonly sink: Writable,
    private readonly signal: AbortSignal,
    private readonly progress: (bytes: number) => void,
  ) {}

  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#settled = watchCopy(this.socket, this.sink, this.signal, [], (error) => {
        transferBuffers.release(this.#held);
        this.#held = 0;
        if (error) reject(error);
        else resolve();
      });
      if (this.#settled()) return;
      const socket = this.socket as unknown as Record<symbol, unknown>;
      if (this.handle.reading) {
        this.handle.reading = false;
        this.handle.readStop();
      }
      this.#fit(0);
      const first = this.#buffers[0]!;
      socket[this.keys.buffer] = first;
      socket[this.keys.callback] = (n: number, buffer: Buffer) => this.#onRead(n, buffer);
      socket[this.keys.generator] = () => this.#buffers[this.#slot];
      this.handle.useUserBuffer(first);
      // Whatever the socket read before the switch (an active-mode connection
      // starts reading on connect) goes first, in order.
      let early: Buffer | null;
      while (!this.#settled() && (early = this.socket.read() as Buffer | null) !== null) {
        this.progress(early.length);
        if (!this.#settled()) this.#write(early, -1);
      }
      if (!this.#settled()) this.socket.resume();
    });
  }

  /** Called by the socket for each read, with the buffer of `#slot`; false stops reading. */
  #onRead(n: number, buffer: Buffer): boolean {
    const slot = this.#slot;
    // May end the transfer (an abort, an upload over its size limit destroys the socket): then the chunk stays out.
    this.progress(n);
    if (this.#settled()) return false;
    this.#write(buffer.subarray(0, n), slot);
    if (n === buffer.length && this.#target < MAX) this.#target *= 2;
    this.#slot = (slot + 1) % RING;
    if (this.#busy[this.#slot]) {
      // The socket keeps this slot's buffer (the generator hands it back), so
      // reading may only resume once its write is done.
      this.#stopped = true;
      return false;
    }
    this.#fit(this.#slot);
    return true;
  }

  #write(chunk: Buffer, slot: number): void {
    if (slot >= 0) this.#busy[slot] = true;
    this.sink.write(chunk, (error) => {
      // A failed write also fails the sink, which ends the copy (watchCopy).
      if (error) return;
      if (slot < 0) return;
      this.#busy[slot] = false;
      if (this.#stopped && slot === this.#slot && !this.#settled()) {
        this.#stopped = false;
        this.socket.resume();
      }
    });
  }

  /** Gives a free slot a buffer of the current target size (within the shared budget). */
  #fit(slot: number): void {
    const have = this.#buffers[slot]?.length ?? 0;
    if (have >= this.#target) return;
    const size = transferBuffers.take(this.#target, 1);
    if (size <= have) {
      transferBuffers.release(size);
      return;
    }
    transferBuffers.release(have);
    this.#held += size - have;
    this.#buffers[slot] = Buffer.allocUnsafeSlow(size);
  }
}
