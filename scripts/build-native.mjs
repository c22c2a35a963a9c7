// Builds Moat's optional native helper, native/build/sendfile.node (sendfile(2)
// for plain downloads: docs/performance.md). Run by `npm install`. It never
// fails the install: without Linux, a C compiler or Node's headers, Moat sends
// downloads through buffers instead and says so when it starts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'sendfile.c');
const target = join(root, 'native', 'build', 'sendfile.node');

function skip(reason) {
  console.warn(`moat: native sendfile helper not built: ${reason}. Downloads will use the (slower) buffered path.`);
  process.exit(0);
}

if (process.platform !== 'linux') skip('sendfile(2) is used on Linux only');
const headers = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  resolve(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].find((dir) => dir && existsSync(join(dir, 'node_api.h')));
if (!headers) skip("Node's headers (node_api.h) were not found");

mkdirSync(dirname(target), { recursive: true });
const partial = `${target}.${process.pid}.tmp`;
try {
  execFileSync(process.env.CC || 'cc', ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-pthread', `-I${headers}`, source, '-o', partial], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  renameSync(partial, target);
} catch (error) {
  rmSync(partial, { force: true });
  skip(`the C compiler failed (${error.message.split('\n')[0]})`);
}
