// This file's process runs without the native helper, as a machine without a C compiler would.
process.env.MOAT_NATIVE = '0';

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nativeStatus } from '../../src/storage/native.js';
import { transferThreads } from '../../src/storage/sendfile.js';
import { binaryClient, storePastLimit, storeResumed } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sha1 } from '../helpers/files.js';

/**
 * Without the native helper (not built, or MOAT_NATIVE=0): folders are read
 * by the fs workers, downloads go through buffers and uploads through reused
 * buffers, with the same results.
 */
describe('without the native helper', () => {
  let t: TestServer;
  const bytes = randomBytes(3 * 1024 * 1024 + 11);
  before(async () => {
    t = await startServer();
    for (let i = 0; i < 600; i++) await fs.writeFile(path.join(t.root, `f-${String(i).padStart(3, '0')}.txt`), 'x'.repeat(i));
    await fs.writeFile(path.join(t.root, 'big.bin'), bytes);
    await fs.writeFile(path.join(t.root, '.moat-upload-0001.part'), 'in progress');
  });
  after(() => t.close());

  test('MOAT_NATIVE=0 turns the helper off, and says why', () => {
    assert.deepEqual(nativeStatus(), { available: false, reason: 'MOAT_NATIVE=0 in the environment' });
  });

  test('LIST and MLSD list every entry, sorted, upload temp files hidden; RETR sends every byte through buffers', async () => {
    const c = await binaryClient(t.port);
    const names = (await c.fetch('NLST')).toString().trim().split('\r\n');
    assert.deepEqual(names, [...Array.from({ length: 600 }, (_, i) => `f-${String(i).padStart(3, '0')}.txt`), 'big.bin'].sort());
    const mlsd = (await c.fetch('MLSD')).toString().trim().split('\r\n');
    assert.equal(mlsd.length, 601);
    assert.match(mlsd.find((l) => l.endsWith(' f-599.txt'))!, /^type=file;size=599;modify=\d{14}(\.\d{3})?;perm=[a-z]+;unique=[0-9a-f]+-[0-9a-f]+;UNIX\.mode=0644; f-599\.txt$/);
    assert.equal(sha1(await c.fetch('RETR big.bin')), sha1(bytes));
    assert.equal(transferThreads().started, 0);
    c.close();
  });

  test('STOR and REST+STOR read the socket into reused buffers (no thread): every byte in place', async () => {
    const c = await binaryClient(t.port);
    const upload = randomBytes(3 * 1024 * 1024 + 5);
    await storeResumed(c, 'up.bin', upload, 700_000);
    assert.equal(sha1(await fs.readFile(path.join(t.root, 'up.bin'))), sha1(upload));
    assert.equal(transferThreads().started, 0);
    c.close();
  });
});

describe('without the native helper, limits.max_upload_size', () => {
  test('an upload past the limit is refused with 552 mid-stream and leaves nothing', async () => {
    const t = await startServer({ config: { limits: { max_upload_size: 1024 * 1024 } } });
    try {
      const c = await binaryClient(t.port);
      await storePastLimit(c, t.root, 'over.bin', 3 * 1024 * 1024);
      c.close();
    } finally {
      await t.close();
    }
  });
});
