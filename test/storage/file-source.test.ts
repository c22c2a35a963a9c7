import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { getEventListeners } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { BufferSource, FileSource } from '../../src/storage/file-source.js';
import { openFdsUnder } from '../helpers/fds.js';

/** A sink that keeps copies of what it is given (the source reuses its buffers) and can be slowed down. */
class Collector extends Writable {
  readonly chunks: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;
  constructor(private readonly delayMs = 0) {
    super({ highWaterMark: 1 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    if (this.delayMs) this.#timer = setTimeout(done, this.delayMs);
    else done();
  }
  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    done(error);
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}


let tmp: string;
let file: string;
let content: Buffer;

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'moat-filesource-'));
  file = path.join(tmp, 'data.bin');
  // Larger than the biggest buffer, and not a multiple of it: several reuses of both buffers and a short tail.
  content = randomBytes(9 * 1024 * 1024 + 12345);
  await fs.writeFile(file, content);
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('FileSource', () => {
  it('sends a range exactly through its direct path, reusing buffers without corrupting what was sent', async () => {
    const before = await openFdsUnder(tmp);
    const start = 4097;
    const sink = new Collector();
    const source = new FileSource(await fs.open(file), start, content.length);
    let counted = 0;
    const { signal } = new AbortController();
    await source.sendTo(sink, signal, (n) => (counted += n));
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'no abort listener left behind');
    assert.ok(sink.bytes.equals(content.subarray(start)), 'bytes differ');
    assert.equal(counted, content.length - start);
    assert.ok(sink.chunks.length >= 3, 'several chunks');
    await new Promise((r) => setImmediate(r));
    assert.equal(await openFdsUnder(tmp), before, 'the handle is closed');
  });

  it('streams the same bytes through its Readable side', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of new FileSource(await fs.open(file), 10, 5000)) chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(content.subarray(10, 5000)));
  });

  it('stops at the end of a file that shrank after it was opened', async () => {
    const short = path.join(tmp, 'short.bin');
    await fs.writeFile(short, content.subarray(0, 1000));
    const fh = await fs.open(short);
    const sink = new Collector();
    await new FileSource(fh, 0, 5000).sendTo(sink, new AbortController().signal, () => undefined);
    assert.equal(sink.bytes.length, 1000);
  });

  it('rejects at once when aborted while the sink is stuck, and closes the handle', async () => {
    const before = await openFdsUnder(tmp);
    const sink = new Collector(60_000);
    const controller = new AbortController();
    const source = new FileSource(await fs.open(file), 0, content.length);
    const sending = source.sendTo(sink, controller.signal, () => controller.abort(new Error('stop')));
    await assert.rejects(sending, /stop/);
    sink.destroy();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await openFdsUnder(tmp), before, 'the handle is closed');
  });

  it('rejects when the sink fails', async () => {
    const sink = new Writable({
      write(_chunk, _enc, done) {
        done(new Error('EPIPE-like'));
      },
    });
    sink.on('error', () => undefined);
    const source = new FileSource(await fs.open(file), 0, content.length);
    await assert.rejects(source.sendTo(sink, new AbortController().signal, () => undefined), /EPIPE-like/);
  });

  it('BufferSource: one write through sendTo, the same bytes as a stream, nothing for empty data', async () => {
    const sink = new Collector();
    let counted = 0;
    await new BufferSource(content.subarray(0, 70_000)).sendTo(sink, new AbortController().signal, (n) => (counted += n));
    assert.ok(sink.bytes.equals(content.subarray(0, 70_000)));
    assert.equal(counted, 70_000);
    assert.equal(sink.chunks.length, 1);
    const streamed: Buffer[] = [];
    for await (const chunk of new BufferSource(content.subarray(5, 105))) streamed.push(chunk as Buffer);
    assert.ok(Buffer.concat(streamed).equals(content.subarray(5, 105)));
    const empty = new Collector();
    await new BufferSource(Buffer.alloc(0)).sendTo(empty, new AbortController().signal, () => undefined);
    assert.equal(empty.chunks.length, 0);
  });

  it('BufferSource: rejects at once when aborted while the sink is stuck, and hands its memory back only once the sink is closed', async () => {
    const sink = new Collector(60_000);
    const controller = new AbortController();
    let released = 0;
    const sending = new BufferSource(content.subarray(0, 1000), () => released++).sendTo(sink, controller.signal, () => undefined);
    controller.abort(new Error('stop'));
    await assert.rejects(sending, /stop/);
    assert.equal(released, 0, 'the write is still queued on the sink');
    sink.destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal(released, 1);
  });

  it('BufferSource: hands its memory back once on every path (sent, streamed as a copy, dropped unread)', async () => {
    let released = 0;
    const release = (): number => released++;
    const sink = new Collector();
    await new BufferSource(content.subarray(0, 500), release).sendTo(sink, new AbortController().signal, () => undefined);
    assert.equal(released, 1);
    const shared = Buffer.from(content.subarray(0, 300));
    const streamed: Buffer[] = [];
    for await (const chunk of new BufferSource(shared, release)) streamed.push(chunk as Buffer);
    assert.equal(released, 2);
    shared.fill(0);
    assert.ok(Buffer.concat(streamed).equals(content.subarray(0, 300)), 'the streamed chunk is a copy');
    const dropped = new BufferSource(content.subarray(0, 10), release);
    dropped.destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal(released, 3);
  });
});
