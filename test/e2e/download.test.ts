import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nativeStatus } from '../../src/storage/native.js';
import { transferThreads } from '../../src/storage/sendfile.js';
import { binaryClient, epsvConnection, ftpUrl, run, type RawClient } from '../helpers/clients.js';
import { openFdsUnder } from '../helpers/fds.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';
import { sha1 } from '../helpers/files.js';

/**
 * Downloads through the real server, with `transfer.sendfile` on (plain binary
 * downloads go through the native sendfile helper, native/sendfile.c) and off
 * (buffers): the same bytes, the same replies, and nothing left running or
 * open when a client aborts, stalls or leaves.
 */
const BIG = 24 * 1024 * 1024 + 4321;

/** Where npm install can build the helper (Linux with a C compiler), it must have: a lost fast path is seen. */
const canBuild = process.platform === 'linux' && spawnSync('cc', ['--version']).status === 0;

test('the native helper is built and loads (npm install builds it on Linux with a C compiler)', { skip: !canBuild && 'no C compiler here' }, () => {
  assert.deepEqual(nativeStatus(), { available: true, reason: '' });
});

for (const sendfile of [true, false]) {
  describe(`downloads with transfer.sendfile = ${sendfile}`, () => {
    let t: TestServer;
    const bytes = randomBytes(BIG);
    before(async () => {
      t = await startServer({ config: { transfer: { sendfile }, timeouts: { stalled_transfer: 1 } } });
      await writeFile(join(t.root, 'big.bin'), bytes);
    });
    after(() => t.close());



    /** Nothing of the download may stay behind: no thread, no descriptor of the served folder. */
    async function nothingLeft(): Promise<void> {
      for (let i = 0; i < 100 && (transferThreads().running > 0 || (await openFdsUnder(t.root)) > 0); i++) await sleep(20);
      assert.equal(transferThreads().running, 0, 'a sendfile thread still runs');
      assert.equal(await openFdsUnder(t.root), 0, 'a descriptor into the served folder is still open');
    }

    test('RETR sends every byte, REST resumes exactly there, and the event counts the bytes', async () => {
      const before = transferThreads().started;
      const c = await binaryClient(t.port);
      assert.equal(sha1(await c.fetch('RETR big.bin')), sha1(bytes));
      assert.match(await c.cmd('REST 1234567'), /^350 /);
      assert.equal(sha1(await c.fetch('RETR big.bin')), sha1(bytes.subarray(1234567)));
      c.close();
      const events = t.eventsNamed('download').filter((e) => e.path === '/big.bin').slice(-2);
      assert.deepEqual(events.map((e) => [e.result, e.bytes]), [['ok', BIG], ['ok', BIG - 1234567]]);
      // The path under test really was taken (or really was not).
      assert.equal(transferThreads().started - before, sendfile && nativeStatus().available ? 2 : 0);
      await nothingLeft();
    });

    test('curl downloads the file intact in passive and active mode, and TYPE A still converts', async () => {
      const before = transferThreads().started;
      for (const mode of [[], ['-P', '-']]) {
        const out = join(t.dir, 'curl-out.bin');
        const r = await run('curl', ['-sS', ...mode, '--user', `alice:${PASSWORD}`, '-o', out, ftpUrl(t, '/big.bin')], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(sha1(await readFile(out)), sha1(bytes), `curl ${mode.join(' ') || 'passive'}`);
      }
      assert.equal(transferThreads().started - before, sendfile && nativeStatus().available ? 2 : 0, 'active connections take sendfile too');
      const c = await binaryClient(t.port);
      await writeFile(join(t.root, 'lines.txt'), 'a\nb\n');
      assert.match(await c.cmd('TYPE A'), /^200 /);
      assert.equal((await c.fetch('RETR lines.txt')).toString(), 'a\r\nb\r\n');
      c.close();
      await nothingLeft();
    });

    /** A download the client reads nothing of: the server's send fills the socket and waits. */
    async function unreadDownload(): Promise<{ c: RawClient; data: Socket }> {
      const c = await binaryClient(t.port);
      const data = await epsvConnection(c);
      data.pause();
      assert.match(await c.cmd('RETR big.bin'), /^150 /);
      return { c, data };
    }

    test('ABOR while the client reads nothing: 426 then 226, and the send stops', async () => {
      const { c, data } = await unreadDownload();
      await sleep(200);
      assert.match(await c.cmd('ABOR'), /^426 /);
      assert.match(await c.reply(), /^226 /);
      data.destroy();
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
      const event = t.eventsNamed('download').at(-1)!;
      assert.equal(event.result, 'aborted');
      assert.ok(event.bytes > 0 && event.bytes < BIG, `bytes ${event.bytes}`);
      await nothingLeft();
    });

    test('a client that stops reading is cut off by timeouts.stalled_transfer', async () => {
      const { c, data } = await unreadDownload();
      assert.match(await c.reply(5_000), /^426 Transfer timed out/);
      data.destroy();
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
      await nothingLeft();
    });

    test('a file cut short while it is being sent is a 451, not a 226 (the client could not tell)', async () => {
      const name = `shrink-${sendfile}.bin`;
      await writeFile(join(t.root, name), randomBytes(32 * 1024 * 1024));
      const c = await binaryClient(t.port);
      const data = await epsvConnection(c);
      data.pause();
      let got = 0;
      data.on('data', (chunk: Buffer) => (got += chunk.length));
      const closed = new Promise((r) => data.once('close', r));
      assert.match(await c.cmd(`RETR ${name}`), /^150 .*\(33554432 bytes\)/);
      await sleep(200);
      await truncate(join(t.root, name), 1024 * 1024);
      data.resume();
      assert.match(await c.reply(), /^451 /);
      await closed;
      assert.ok(got < 32 * 1024 * 1024, `got ${got}`);
      const event = t.eventsNamed('download').at(-1)!;
      assert.equal(event.result, 'failed');
      assert.match(event.reason ?? '', /shrank/);
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
      await nothingLeft();
    });

    test('a client that resets the data connection mid-download gets 426 and keeps its session', async () => {
      const c = await binaryClient(t.port);
      const data = await epsvConnection(c);
      let got = 0;
      const gone = new Promise<void>((resolve) =>
        data.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got > 1024 * 1024) {
            data.resetAndDestroy();
            resolve();
          }
        }),
      );
      assert.match(await c.cmd('RETR big.bin'), /^150 /);
      await gone;
      assert.match(await c.reply(), /^426 /);
      assert.equal(sha1(await c.fetch('RETR big.bin')), sha1(bytes));
      c.close();
      await nothingLeft();
    });
  });
}
