import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, rm, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nativeStatus } from '../../src/storage/native.js';
import { receiveIntoFile, sendfile, transferThreads } from '../../src/storage/sendfile.js';
import type { StorageError } from '../../src/storage/types.js';
import { sha1 } from '../helpers/files.js';

/**
 * A connected pair on 127.0.0.1: `server` is the side sendfile writes to, or
 * the one a receive reads (then with `unread`: Node never reads it itself).
 */
async function socketPair(unread = false): Promise<{ server: Socket; client: Socket; close(): void }> {
  const listener = createServer({ pauseOnConnect: unread });
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
      assert.equal(transferThreads().running, 0);
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
      const started = transferThreads().started;
      pair.server.cork();
      pair.server.write('queued');
      assert.equal(sendfile(pair.server, fh.fd, 0, 10, signal, () => undefined), undefined);
      pair.server.uncork();
      pair.server.end();
      assert.equal(sendfile(pair.server, fh.fd, 0, 10, signal, () => undefined), undefined);
      const { PassThrough } = await import('node:stream');
      assert.equal(sendfile(new PassThrough(), fh.fd, 0, 10, signal, () => undefined), undefined);
      assert.equal(transferThreads().started, started, 'no send was started');
    }));
});

describe('receiveIntoFile()', { skip: !nativeStatus().available && 'native helper not built' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moat-receive-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A connected pair whose server side Node is not reading, and a file open for writing; both closed after `body`. */
  const withTarget = async (body: (pair: Awaited<ReturnType<typeof socketPair>>, fh: FileHandle) => Promise<void>): Promise<void> => {
    const pair = await socketPair(true);
    const fh = await open(join(dir, `up-${randomBytes(4).toString('hex')}.bin`), 'w+');
    try {
      await body(pair, fh);
    } finally {
      pair.close();
      await fh.close();
    }
  };

  test("writes the socket's bytes at the position until the client's end", async () => {
    await withTarget(async ({ server, client }, fh) => {
      await fh.write(Buffer.from('head'), 0, 4, 0);
      const bytes = randomBytes(2 * 1024 * 1024 + 3);
      let progressed = 0;
      const job = receiveIntoFile(server, { fd: fh.fd, position: 4 }, Infinity, new AbortController().signal, (n) => (progressed += n), () => undefined);
      assert.ok(job, 'a thread was started');
      client.end(bytes);
      assert.equal(await job, bytes.length);
      assert.equal(progressed, bytes.length);
      const stored = await fh.readFile();
      assert.equal(sha1(stored), sha1(Buffer.concat([Buffer.from('head'), bytes])));
    });
  });

  test('stops before a read that would pass the room: 552 quota error, that read not written', async () => {
    await withTarget(async ({ server, client }, fh) => {
      const job = receiveIntoFile(server, { fd: fh.fd, position: 0 }, 100_000, new AbortController().signal, () => undefined, () => undefined)!;
      client.write(Buffer.alloc(60_000, 1));
      await new Promise((r) => setTimeout(r, 50));
      client.end(Buffer.alloc(60_000, 2));
      await assert.rejects(job, (e: StorageError) => e.kind === 'quota');
      const stored = await fh.readFile();
      assert.ok(stored.length <= 100_000, `${stored.length} bytes written`);
      assert.ok(stored.every((b) => b === 1), 'nothing of the read that crossed the room');
    });
  });

  test('a reset is ECONNRESET, never an end; an abort and a socket closed under it reject too', async () => {
    await withTarget(async ({ server, client }, fh) => {
      const job = receiveIntoFile(server, { fd: fh.fd, position: 0 }, Infinity, new AbortController().signal, () => undefined, () => undefined)!;
      await new Promise<void>((resolve) => client.write(Buffer.alloc(500_000), () => resolve()));
      client.resetAndDestroy();
      await assert.rejects(job, { code: 'ECONNRESET' });
    });
    await withTarget(async ({ server }, fh) => {
      const abort = new AbortController();
      const job = receiveIntoFile(server, { fd: fh.fd, position: 0 }, Infinity, abort.signal, () => undefined, () => undefined)!;
      abort.abort(new Error('ABOR'));
      await assert.rejects(job, /ABOR/);
    });
    await withTarget(async ({ server }, fh) => {
      const job = receiveIntoFile(server, { fd: fh.fd, position: 0 }, Infinity, new AbortController().signal, () => undefined, () => undefined)!;
      server.destroy();
      await assert.rejects(job, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    });
    for (let i = 0; i < 100 && transferThreads().running > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(transferThreads().running, 0);
  });
});
