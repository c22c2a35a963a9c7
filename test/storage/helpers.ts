import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { StorageError, type StorageErrorKind, type VirtualPath } from '../../src/storage/types.js';
import { ROOT, resolveVirtual } from '../../src/storage/vpath.js';

/** A client path resolved from the home, as the session would hand it to storage. */
export const v = (p: string): VirtualPath => resolveVirtual(ROOT, p);

/**
 * Expect a StorageError of `kind` whose message names no host path under
 * `hostDir`; returns the message for callers that collect them.
 */
export async function rejectsWith(promise: Promise<unknown>, kind: StorageErrorKind, hostDir?: string): Promise<string> {
  let message = '';
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError, got ${String(error)}`);
    assert.equal(error.kind, kind, `expected ${kind}, got ${error.kind} (${error.message})`);
    if (hostDir) assert.ok(!error.message.includes(hostDir), `message leaks a host path: ${error.message}`);
    message = error.message;
    return true;
  });
  return message;
}

/** Creates `count` files `${prefix}${zero-padded index}` holding `content` in `dir`, 500 at a time. */
export async function writeFiles(dir: string, count: number, prefix: string, digits: number, content: string): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, count - i) }, (_, j) =>
        fs.writeFile(path.join(dir, `${prefix}${String(i + j).padStart(digits, '0')}`), content),
      ),
    );
  }
}
