import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Hex SHA-1, to compare transferred bytes without printing megabytes on a failure. */
export function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** Runs `body` in a fresh temporary folder, removed afterwards whatever happens. */
export async function inTempDir(body: (dir: string) => Promise<void>, prefix = 'moat-test-'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
