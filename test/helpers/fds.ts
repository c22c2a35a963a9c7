import fs from 'node:fs/promises';

/**
 * Open descriptors of this process that point into `dir`. Counting every
 * descriptor would make leak checks flaky: the test runner, the loader and
 * worker threads open and close their own at any time.
 */
export async function openFdsUnder(dir: string): Promise<number> {
  const real = await fs.realpath(dir);
  let count = 0;
  for (const fd of await fs.readdir('/proc/self/fd')) {
    const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === real || target.startsWith(`${real}/`)) count++;
  }
  return count;
}
