import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { copy } from '../../src/data/copy.js';

/** A sink that takes a chunk only every few milliseconds, so backpressure really happens. */
function slowSink(received: Buffer[]): Writable {
  return new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, done) {
      received.push(chunk);
      setImmediate(done);
    },
  });
}

describe('copy', () => {
  it('moves every byte in order through backpressure and leaves no listener behind', async () => {
    const chunks = Array.from({ length: 200 }, (_, i) => Buffer.alloc(4096, i));
    const source = Readable.from(chunks);
    const received: Buffer[] = [];
    const sink = slowSink(received);
    const { signal } = new AbortController();
    let counted = 0;
    await copy(source, sink, signal, (n) => (counted += n));
    assert.ok(Buffer.concat(received).equals(Buffer.concat(chunks)));
    assert.equal(counted, 200 * 4096);
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    assert.equal(sink.listenerCount('drain'), 0);
  });

  it('fails as a lost connection when the sink closes before the source ends', async () => {
    const source = new PassThrough();
    const sink = new PassThrough();
    const copying = copy(source, sink, new AbortController().signal, () => undefined);
    source.write('first');
    sink.destroy();
    await assert.rejects(copying, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    assert.ok(source.destroyed, 'the source is released');
  });

  it('rejects with the abort reason, at once when already aborted, and destroys the source', async () => {
    const controller = new AbortController();
    const source = new PassThrough();
    const copying = copy(source, new PassThrough(), controller.signal, () => undefined);
    controller.abort(new Error('stalled'));
    await assert.rejects(copying, /stalled/);
    assert.ok(source.destroyed);
    const early = new PassThrough();
    await assert.rejects(copy(early, new PassThrough(), controller.signal, () => undefined), /stalled/);
    assert.ok(early.destroyed);
  });

  it('rejects with the error of either stream', async () => {
    const source = new PassThrough();
    const copying = copy(source, new PassThrough(), new AbortController().signal, () => undefined);
    source.destroy(new Error('disk gone'));
    await assert.rejects(copying, /disk gone/);
    const sink = new PassThrough();
    const other = copy(new PassThrough(), sink, new AbortController().signal, () => undefined);
    sink.destroy(new Error('EPIPE-like'));
    await assert.rejects(other, /EPIPE-like/);
  });
});
