import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, rm, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nativeStatus } from '../../src/storage/native.js';
import { sendfile, sendfileJobs } from '../../src/storage/sendfile.js';

/** A connected pair on 127.0.0.1: `server` is the side sendfile writes to. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  const client = connect({ port, host: '127.0.0.1' });
  const [server] = (await once(listener, 'connection')) as [Socket];
  listener.close();
  client.on('error', () => undefined);
  server.on('error', () => undefined);
  return {
    server,
    client,
    close() {
      client.destroy();
      server.destroy();
    },
  };
}

function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return once(socket, 'end').then(() => Buffer.concat(chunks));
}

describe('sendfile()', { skip: !nativeStatus().available && 'native helper not built' }, () => {
  let dir: string;
  const bytes = randomBytes(3 * 1024 * 1024 + 5);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moat-sendfile-'));
    await writeFile(join(dir, 'f.bin'), bytes);
    // Larger than what loopback buffers absorb, so a peer that reads nothing really holds the send.
    await writeFile(join(dir, 'sparse.bin'), '');
    await truncate(join(dir, 'sparse.bin'), 256 * 1024 * 1024);
  });
  after(() => rm(dir, { recursive: true, force: true }));
  /**
   * A connected pair and an open file of the test folder, both closed whatever
   * `body` does: closing the socket also cancels a send blocked on a peer that
   * reads nothing.
   */
  const withPair = async (file: string, body: (pair: Awaited<ReturnType<typeof socketPair>>, fh: FileHandle) => Promise<void>): Promise<void> => {
    const pair = await socketPair();
    const fh = await open(join(dir, file));
    try {
      await body(pair, fh);
    } finally {
      pair.close();
      await fh.close();
    }
  };

  test('sends the range asked for and reports it as progress', () =>
    withPair('f.bin', async (pair, fh) => {
      const received = collect(pair.client);
      let progressed = 0;
      const sent = await sendfile(pair.server, fh.fd, 1000, 2_000_000, new AbortController().signal, (n) => (progressed += n));
      pair.server.end();
      assert.equal(sent, 2_000_000);
      assert.equal(progressed, 2_000_000);
      assert.ok((await received).equals(bytes.subarray(1000, 2_001_000)));
    }));

  test('a file shorter than the range (it shrank) ends the send early, without error', () =>
    withPair('f.bin', async (pair, fh) => {
      const received = collect(pair.client);
      const sent = await sendfile(pair.server, fh.fd, bytes.length - 10, 1000, new AbortController().signal, () => undefined);
      pair.server.end();
      assert.equal(sent, 10);
      assert.ok((await received).equals(bytes.subarray(-10)));
    }));

  test('an abort while the peer reads nothing stops the thread and rejects with the reason', () =>
    withPair('sparse.bin', async (pair, fh) => {
      pair.client.pause();
          const controller = new AbortController();
      const sending = sendfile(pair.server, fh.fd, 0, 256 * 1024 * 1024, controller.signal, () => undefined)!;
      setTimeout(() => controller.abort(new Error('stop')), 100);
      await assert.rejects(sending, /stop/);
      assert.equal(sendfileJobs().running, 0);
    }));

  test('a peer that resets rejects with its errno', () =>
    withPair('sparse.bin', async (pair, fh) => {
          pair.client.once('data', () => pair.client.resetAndDestroy());
      const sending = sendfile(pair.server, fh.fd, 0, 256 * 1024 * 1024, new AbortController().signal, () => undefined)!;
      await assert.rejects(sending, (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET' || e.code === 'EPIPE');
    }));

  test('declines (undefined, nothing sent) a socket with writes queued, an ended one, or a stream that is no socket', () =>
    withPair('f.bin', async (pair, fh) => {
          const signal = new AbortController().signal;
      const started = sendfileJobs().started;
      pair.server.cork();
      pair.server.write('queued');
      assert.equal(sendfile(pair.server, fh.fd, 0, 10, signal, () => undefined), undefined);
      pair.server.uncork();
      pair.server.end();
      assert.equal(sendfile(pair.server, fh.fd, 0, 10, signal, () => undefined), undefined);
      const { PassThrough } = await import('node:stream');
      assert.equal(sendfile(new PassThrough(), fh.fd, 0, 10, signal, () => undefined), undefined);
      assert.equal(sendfileJobs().started, started, 'no send was started');
    }));
});
