import assert from 'node:assert/strict';
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
