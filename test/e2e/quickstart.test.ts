import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { run } from '../helpers/clients.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

let dir = '';
let child: ChildProcess | undefined;
after(async () => {
  // npm starts the server as a grandchild: end the whole process group.
  if (child?.pid) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  child?.stdout?.destroy();
  child?.stderr?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the README's quick start works in a fresh clone", async () => {
  const readme = await readFile(join(repo, 'README.md'), 'utf8');
  assert.match(readme, /^npm install && npm start /m, 'README starts the server with npm start');
  assert.match(readme, /^npm test /m, 'README runs the tests with npm test');
  assert.match(await readFile(join(repo, '.ci/run'), 'utf8'), /^npm test$/m, '.ci/run runs the README test command');

  dir = await mkdtemp(join(tmpdir(), 'moat-clone-'));
  const clone = join(dir, 'moat');
  const cloned = await run('git', ['clone', '--quiet', '--depth', '1', `file://${repo}`, clone]);
  assert.equal(cloned.code, 0, cloned.stderr);
  // The installed packages are those of this checkout; what is tested is that the clone's own files suffice.
  await symlink(join(repo, 'node_modules'), join(clone, 'node_modules'));

  const port = await freePort();
  child = spawn('npm', ['start', '--', '--listen', `127.0.0.1:${port}`, '--pasv-ports', '43900-43949'], {
    cwd: clone,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const password = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no demo password printed: ${stderr}`)), 30_000);
    child!.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /password: (\S+)/.exec(stderr);
      if (m && /Try: /.test(stderr)) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  // --ssl: use TLS if the server offers it, as the zero-config start may.
  const listing = await run('curl', ['-sS', '--ssl', '-k', '--user', `demo:${password}`, `ftp://127.0.0.1:${port}/`]);
  assert.equal(listing.code, 0, listing.stderr);
  const wrong = await run('curl', ['-sS', '--ssl', '-k', '--user', 'demo:wrong-password', `ftp://127.0.0.1:${port}/`]);
  assert.equal(wrong.code, 67);
});
