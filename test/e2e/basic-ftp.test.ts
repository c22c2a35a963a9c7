import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Client } from 'basic-ftp';
import { ftpClient } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';

async function download(client: Client, path: string, start = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  await client.downloadTo(sink, path, start);
  return Buffer.concat(chunks);
}

for (const host of ['127.0.0.1', '::1']) {
  describe(`basic-ftp over ${host}`, () => {
    let t: TestServer;
    let client: Client;
    before(async () => {
      t = await startServer({ host });
      client = await ftpClient(t);
    });
    after(async () => {
      client.close();
      await t.close();
    });

    test('upload, list, download, size, rename, delete', async () => {
      const body = Buffer.from('hello moat\n'.repeat(1000));
      await client.uploadFrom(Readable.from([body]), 'hello.txt');
      assert.deepEqual(await readFile(join(t.root, 'hello.txt')), body);
      const list = await client.list();
      const entry = list.find((e) => e.name === 'hello.txt');
      assert.ok(entry, 'listed');
      assert.equal(entry.size, body.length);
      assert.deepEqual(await download(client, 'hello.txt'), body);
      assert.equal(await client.size('hello.txt'), body.length);
      await client.rename('hello.txt', 'renamed.txt');
      assert.deepEqual(await readdir(t.root), ['renamed.txt']);
      await client.remove('renamed.txt');
      assert.deepEqual(await readdir(t.root), []);
    });

    test('folders: mkdir, cd, pwd, cdup, rmdir', async () => {
      await client.ensureDir('/a/b');
      assert.equal(await client.pwd(), '/a/b');
      await client.cdup();
      assert.equal(await client.pwd(), '/a');
      await client.cd('/');
      await client.removeEmptyDir('a/b');
      await client.removeEmptyDir('a');
      assert.deepEqual(await readdir(t.root), []);
    });

    test('resume a download (REST) and an upload (APPE)', async () => {
      const body = Buffer.alloc(300_000, 7);
      body.write('tail', 299_990);
      await writeFile(join(t.root, 'big.bin'), body);
      assert.deepEqual(await download(client, 'big.bin', 100_000), body.subarray(100_000));
      // basic-ftp's appendFrom sends APPE: the remaining bytes land after the first part.
      await writeFile(join(t.root, 'app.bin'), body.subarray(0, 1000));
      await client.appendFrom(Readable.from([body.subarray(1000)]), 'app.bin');
      assert.deepEqual(await readFile(join(t.root, 'app.bin')), body);
    });

    test('UTF-8 names with spaces', async () => {
      const name = 'Grüße aus Köln – 日本語 file.txt';
      await mkdir(join(t.root, 'ünïcode dir'));
      await client.uploadFrom(Readable.from([Buffer.from('x')]), `ünïcode dir/${name}`);
      const list = await client.list('ünïcode dir');
      assert.deepEqual(
        list.map((e) => e.name),
        [name],
      );
      assert.equal((await readFile(join(t.root, 'ünïcode dir', name))).toString(), 'x');
    });
  });
}
