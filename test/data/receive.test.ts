import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { getEventListeners, once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { receive, userBufferReads } from '../../src/data/receive.js';
import { transferBuffers } from '../../src/storage/buffer-budget.js';
import { sendInPieces } from '../helpers/clients.js';

/**
 * Takes a chunk's bytes only when it calls back, after a delay, as pwrite does:
 * a receiver that refilled a buffer before that would corrupt what is kept.
 */
class LateCopySink extends Writable {
  readonly chunks: Buffer[] = [];
  readonly arrayBuffers = new Set<ArrayBufferLike>();
  readonly releasesChunks = true;
  #timers = new Set<NodeJS.Timeout>();

  constructor(private readonly delayMs = 1) {
    super({ highWaterMark: 1 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this.arrayBuffers.add(chunk.buffer);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.chunks.push(Buffer.from(chunk));
      done();
    }, this.delayMs);
    this.#timers.add(timer);
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    for (const timer of this.#timers) clearTimeout(timer);
    done(error);
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

let server: Server;
let port: number;
const accepted: Socket[] = [];
let onAccept: ((socket: Socket) => void) | undefined;

before(async () => {
  // Like the passive listener: sockets arrive paused.
  server = createServer({ pauseOnConnect: true }, (socket) => {
    accepted.push(socket);
    onAccept?.(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const socket of accepted) socket.destroy();
  server.close();
  await once(server, 'close');
});

/** A connected client and the server's end of it. */
async function pair(): Promise<{ client: Socket; socket: Socket }> {
  const accepting = new Promise<Socket>((resolve) => (onAccept = resolve));
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const socket = await accepting;
  // As DataSetup.open does before handing the socket to a transfer.
  socket.resume();
  return { client, socket };
}

describe('receive', () => {
  it('is available on this Node, so uploads take the reused-buffer path', () => {
    assert.equal(userBufferReads, true);
  });

  it('delivers every byte in order through reused buffers, reading on only after each buffer is written out', async () => {
    const data = randomBytes(24 * 1024 * 1024 + 4321);
    const { client, socket } = await pair();
    const sink = new LateCopySink(2);
    const { signal } = new AbortController();
    const budgetBefore = transferBuffers.inUse;
    const endListeners = socket.listenerCount('end');
    let counted = 0;
    await Promise.all([receive(socket, sink, signal, (n) => (counted += n)), sendInPieces(client, data)]);
    await new Promise<void>((resolve) => sink.end(resolve));
    assert.equal(counted, data.length);
    assert.ok(sink.bytes.equals(data), 'bytes differ');
    // The copy path would hand over a fresh buffer per 64 KiB read (over 380 here).
    assert.ok(sink.arrayBuffers.size <= 24, `${sink.arrayBuffers.size} distinct buffers`);
    assert.equal(transferBuffers.inUse, budgetBefore, 'the budget is given back');
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    assert.equal(socket.listenerCount('end'), endListeners);
    socket.destroy();
  });

  it('writes what the socket read before the switch first', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const { client, socket } = await pair();
    socket.pause();
    client.write(data.subarray(0, 40_000));
    // A paused socket stops reading past its 16 KiB high-water mark if the kernel splits the write.
    const deadline = Date.now() + 5_000;
    while (socket.readableLength < 16_384) {
      if (Date.now() > deadline) assert.fail(`only ${socket.readableLength} bytes read before the switch`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const sink = new LateCopySink();
    await Promise.all([receive(socket, sink, new AbortController().signal, () => undefined), sendInPieces(client, data.subarray(40_000))]);
    await new Promise<void>((resolve) => sink.end(resolve));
    assert.ok(sink.bytes.equals(data), 'bytes differ');
    socket.destroy();
  });

  it('hands fresh chunks to a sink that may keep them (copy path)', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const { client, socket } = await pair();
    const kept: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        kept.push(chunk);
        done();
      },
    });
    await Promise.all([receive(socket, sink, new AbortController().signal, () => undefined), sendInPieces(client, data)]);
    assert.ok(Buffer.concat(kept).equals(data));
    socket.destroy();
  });

  it('a progress callback that destroys the source (a size limit) keeps the chunk that crossed it out of the sink, on both paths', async () => {
    for (const releasing of [true, false]) {
      const { client, socket } = await pair();
      client.on('error', () => undefined);
      let handed = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          handed += chunk.length;
          done();
        },
      });
      if (releasing) Object.defineProperty(sink, 'releasesChunks', { value: true });
      const limit = 300_000;
      let total = 0;
      const receiving = receive(socket, sink, new AbortController().signal, (n) => {
        total += n;
        if (total > limit) socket.destroy(new Error('over the limit'));
      });
      void sendInPieces(client, randomBytes(3 * 1024 * 1024)).catch(() => undefined);
      await assert.rejects(receiving, /over the limit/);
      assert.ok(handed <= limit, `${handed} bytes reached the sink (${releasing ? 'ring' : 'copy'} path)`);
      client.destroy();
    }
  });

  it('rejects with the abort reason mid-transfer, destroys the socket and gives the budget back', async () => {
    const { client, socket } = await pair();
    client.on('error', () => undefined);
    const controller = new AbortController();
    const budgetBefore = transferBuffers.inUse;
    const receiving = receive(socket, new LateCopySink(), controller.signal, (n) => {
      if (n > 0) controller.abort(new Error('stalled'));
    });
    client.write(randomBytes(256 * 1024));
    await assert.rejects(receiving, /stalled/);
    assert.ok(socket.destroyed);
    assert.equal(transferBuffers.inUse, budgetBefore);
    client.destroy();
  });

  it('fails as a lost connection when the client resets before its end', async () => {
    const { client, socket } = await pair();
    const receiving = receive(socket, new LateCopySink(), new AbortController().signal, () => undefined);
    client.write(randomBytes(100_000));
    await new Promise((r) => setTimeout(r, 20));
    client.resetAndDestroy();
    await assert.rejects(receiving, (error: NodeJS.ErrnoException) => error.code === 'ECONNRESET' || error.code === 'ERR_STREAM_PREMATURE_CLOSE');
    assert.ok(socket.destroyed);
  });

  it('rejects with the sink error and stops reading', async () => {
    const { client, socket } = await pair();
    client.on('error', () => undefined);
    const sink = new Writable({
      write(_chunk, _enc, done) {
        done(new Error('disk full'));
      },
    });
    sink.on('error', () => undefined);
    Object.defineProperty(sink, 'releasesChunks', { value: true });
    const receiving = receive(socket, sink, new AbortController().signal, () => undefined);
    client.write(randomBytes(100_000));
    await assert.rejects(receiving, /disk full/);
    assert.ok(socket.destroyed);
    client.destroy();
  });
});
