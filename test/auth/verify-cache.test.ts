import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VerifyCache } from '../../src/auth/verify-cache.js';

describe('VerifyCache', () => {
  it('hits only for the same name, password and stored hash', () => {
    const cache = new VerifyCache();
    cache.remember('alice', 'pw', 'hash1');
    assert.equal(cache.has('alice', 'pw', 'hash1'), true);
    assert.equal(cache.has('alice', 'pw2', 'hash1'), false);
    assert.equal(cache.has('alice', 'pw', 'hash2'), false);
    assert.equal(cache.has('bob', 'pw', 'hash1'), false);
    // NUL separators: moving text between the parts must not collide.
    assert.equal(cache.has('alice', 'pw\0hash1', ''), false);
  });

  it('expires entries after the TTL, counted from the verification', () => {
    let now = 1000;
    const cache = new VerifyCache({ ttlMs: 100, now: () => now });
    cache.remember('a', 'pw', 'h');
    now += 60;
    assert.equal(cache.has('a', 'pw', 'h'), true);
    now += 60; // a hit did not extend the entry
    assert.equal(cache.has('a', 'pw', 'h'), false);
    assert.equal(cache.size, 0);
  });

  it('is bounded and evicts the least recently used', () => {
    const cache = new VerifyCache({ maxEntries: 3 });
    for (const u of ['a', 'b', 'c']) cache.remember(u, 'pw', 'h');
    assert.equal(cache.has('a', 'pw', 'h'), true); // a is now the youngest
    cache.remember('d', 'pw', 'h');
    assert.equal(cache.size, 3);
    assert.equal(cache.has('b', 'pw', 'h'), false);
    assert.equal(cache.has('a', 'pw', 'h'), true);
    assert.equal(cache.has('d', 'pw', 'h'), true);
  });

  it('forgets one user or everything', () => {
    const cache = new VerifyCache();
    cache.remember('a', 'pw1', 'h');
    cache.remember('a', 'pw2', 'h');
    cache.remember('b', 'pw', 'h');
    cache.forgetUser('a');
    assert.equal(cache.size, 1);
    assert.equal(cache.has('b', 'pw', 'h'), true);
    cache.clear();
    assert.equal(cache.size, 0);
  });

  it('stores no password, only keyed digests', () => {
    const cache = new VerifyCache();
    cache.remember('alice', 'very-secret-password', 'h');
    const dump = JSON.stringify([...(cache as unknown as { entries: Map<string, unknown> }).entries]);
    assert.ok(!dump.includes('very-secret-password'));
  });

  it('runs one verification for concurrent checks of the same credentials', async () => {
    const cache = new VerifyCache();
    let calls = 0;
    let finish!: (ok: boolean) => void;
    const check = (): Promise<boolean> => {
      calls++;
      return new Promise((r) => (finish = r));
    };
    const burst = [1, 2, 3].map(() => cache.verify('a', 'pw', 'h', check));
    const other = cache.verify('a', 'pw2', 'h', async () => false);
    finish(true);
    assert.deepEqual(await Promise.all(burst), [true, true, true]);
    assert.equal(calls, 1);
    assert.equal(await other, false);
    assert.equal(cache.has('a', 'pw', 'h'), true);
    assert.equal(cache.has('a', 'pw2', 'h'), false);
  });

  it('does not share a failed verification with later attempts', async () => {
    const cache = new VerifyCache();
    let calls = 0;
    const check = async (): Promise<boolean> => {
      calls++;
      return false;
    };
    assert.equal(await cache.verify('a', 'pw', 'h', check), false);
    assert.equal(await cache.verify('a', 'pw', 'h', check), false);
    assert.equal(calls, 2);
  });
});
