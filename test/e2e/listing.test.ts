import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { nativeLinesUsed } from '../../src/listing/native-lines.js';
import { nativeTablesDecoded } from '../../src/storage/native-list.js';
import { LocalStorage } from '../../src/storage/local.js';
import { nativeStatus } from '../../src/storage/native.js';
import type { EntryTable, FileInfo, VirtualPath } from '../../src/storage/types.js';
import { RawClient } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('listings', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    const big = join(t.root, 'big');
    await mkdir(big);
    for (let i = 0; i < 10_000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => writeFile(join(big, `file-${String(i + j).padStart(5, '0')}.dat`), 'x')));
    }
    await writeFile(join(t.root, '.hidden'), 'h');
    await writeFile(join(t.root, 'visible file.txt'), 'v');
  });
  after(() => t.close());

  test('a 10,000-entry folder lists completely (LIST and MLSD) while another session is served', async () => {
    const client = await RawClient.loggedIn(t.port);
    const other = await RawClient.loggedIn(t.port);
    let answered = 0;
    let listing = true;
    const pinger = (async () => {
      while (listing) {
        assert.match(await other.cmd('NOOP'), /^200 /);
        answered++;
      }
    })();
    const formatted = nativeLinesUsed.listings;
    const decoded = nativeTablesDecoded.tables;
    const list = (await client.fetch('LIST big')).toString().split('\r\n').filter(Boolean);
    const mlsd = (await client.fetch('MLSD big')).toString().split('\r\n').filter(Boolean);
    // Where the helper is built, it formatted both (native/format.c; the lines are compared with
    // the JavaScript formatter's in test/listing/native-lines.test.ts).
    assert.equal(nativeLinesUsed.listings - formatted, nativeStatus().available ? 2 : 0);
    // Nor were 10,000 names turned into strings for it: the helper's lines need none.
    assert.equal(nativeTablesDecoded.tables - decoded, 0);
    listing = false;
    await pinger;
    assert.equal(list.length, 10_000);
    assert.equal(mlsd.length, 10_000);
    assert.match(list[0]!, / file-00000\.dat$/);
    assert.match(mlsd[9_999]!, /^type=file;size=1;.* file-09999\.dat$/);
    assert.ok(answered > 0, 'the other session got answers during the listing');
    client.close();
    other.close();
  });

  test('LIST hides dot files unless -a; NLST gives names; flags are tolerated', async () => {
    const c = await RawClient.loggedIn(t.port);
    const grab = async (cmd: string): Promise<string> => (await c.fetch(cmd)).toString('utf8');
    const plain = await grab('LIST');
    assert.doesNotMatch(plain, /\.hidden/);
    assert.match(plain, /^-rw.* visible file\.txt\r$/m);
    assert.match(plain, /^d.* big\r$/m);
    assert.match(await grab('LIST -la'), /\.hidden/);
    assert.equal(await grab('NLST'), 'big\r\nvisible file.txt\r\n');
    assert.match(await grab('LIST -l visible file.txt'), /^-rw.* visible file\.txt\r\n$/);
    // No globbing: '*' is a literal name and does not exist.
    assert.match(await c.cmd('LIST big/*'), /^550 /);
    c.close();
  });

  test('a name with CR/LF on disk cannot forge lines in NLST, LIST or MLSD', async () => {
    await mkdir(join(t.root, 'odd'));
    await writeFile(join(t.root, 'odd', 'evil\r\nforged.txt'), 'x');
    const c = await RawClient.loggedIn(t.port);
    for (const cmd of ['NLST odd', 'LIST odd', 'MLSD odd']) {
      const lines = (await c.fetch(cmd)).toString('utf8').split('\r\n').filter(Boolean);
      assert.equal(lines.length, 1, `${cmd}: ${JSON.stringify(lines)}`);
      assert.match(lines[0]!, /evil\?\?forged\.txt$/);
    }
    c.close();
  });
});

/** A storage whose folder "slow" takes 2.5 s to read: a hung network filesystem, in small. */
class SlowFolders extends LocalStorage {
  /** The folder itself is slow to stat ("slow-stat"): a hung mount hangs there first. */
  override async stat(vpath: VirtualPath): Promise<FileInfo> {
    if (vpath === '/slow-stat') await sleep(2_500);
    return super.stat(vpath);
  }

  override async listTable(vpath: VirtualPath, options: { limit?: number } = {}): Promise<EntryTable> {
    if (vpath === '/slow') await sleep(2_500);
    return super.listTable(vpath, options);
  }
}

for (const seconds of [1, 0]) {
  describe(`limits.listing_timeout = ${seconds}`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({
        config: { limits: { listing_timeout: seconds } },
        parts: { storage: async () => new SlowFolders(t.root) },
      });
      await mkdir(join(t.root, 'slow'));
      await mkdir(join(t.root, 'slow-stat'));
      await writeFile(join(t.root, 'slow', 'a.txt'), 'a');
    });
    after(() => t.close());

    test(seconds ? 'a listing that takes longer is answered 451 at the deadline, and the session goes on' : '0 means no limit: a slow listing completes', async () => {
      const c = await RawClient.loggedIn(t.port);
      const started = Date.now();
      if (seconds) {
        assert.match(await c.cmd('EPSV'), /^229 /);
        assert.match(await c.cmd('LIST slow'), /^451 Listing took too long/);
        const took = Date.now() - started;
        assert.ok(took >= 900 && took < 2_400, `answered after ${took} ms, not at the 1 s deadline`);
        // The storage is still reading: a second listing is refused rather than piled on top.
        assert.match(await c.cmd('NLST slow'), /^451 The previous listing is still being read/);
        await sleep(2_000);
        assert.match((await c.fetch('NLST')).toString(), /^slow\r\nslow-stat\r\n$/, 'once it is done, the session lists again');
        // The stat before the read is under the same deadline.
        const before = Date.now();
        assert.match(await c.cmd('LIST slow-stat'), /^451 Listing took too long/);
        assert.ok(Date.now() - before < 2_400, 'answered at the deadline, not when the stat returned');
      } else {
        assert.match((await c.fetch('NLST slow')).toString(), /^a\.txt\r\n$/);
      }
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
    });
  });
}
