import { open, stat, unlink } from 'node:fs/promises';

/** A lock older than this was left by a process that died while saving. */
const STALE_LOCK_MS = 30_000;

/**
 * Take `lock` (created with O_EXCL), waiting up to ~3 s for another saver;
 * resolves to its release. The files Moat keeps in its state folder (users,
 * bans) are written by the server and by `moat` commands alike: each re-reads,
 * writes and renames under this lock, so no write lands between another's
 * read and its rename. Saves take milliseconds, so a longer wait means a stale
 * lock (removed once old enough) or a stuck process (an error saying so).
 */
export async function lockFile(lock: string): Promise<() => Promise<void>> {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.close();
      return () => unlink(lock).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot lock ${lock}: ${(err as Error).message}`);
    }
    const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > STALE_LOCK_MS) {
      await unlink(lock).catch(() => undefined);
      continue;
    }
    if (attempt >= 150) throw new Error(`${lock} is held by another process; run the command again (remove the file if no moat command is running)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Make a rename in `dir` durable. Best effort: some file systems refuse fsync on a directory. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The new content is in place either way; only durability across a crash is at stake.
  }
}
