// Builds Moat's optional native helper, native/build/moat.node (sendfile(2) for
// plain downloads, threaded directory listings: docs/performance.md). Run by
// `npm install`. It never fails the install: without Linux, a C compiler or
// Node's headers, Moat takes its JavaScript paths instead (same results,
// slower) and says so when it starts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sources = ['module.c', 'sendfile.c', 'list.c', 'format.c', 'socket.c'].map((file) => join(root, 'native', file));
const target = join(root, 'native', 'build', 'moat.node');

function skip(reason) {
  console.warn(`moat: native helper not built: ${reason}. Downloads and listings will take the (slower) JavaScript paths.`);
  process.exit(0);
}

if (process.platform !== 'linux') skip('it is built on Linux only');
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
  execFileSync(process.env.CC || 'cc', ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-pthread', `-I${headers}`, ...sources, '-o', partial], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  renameSync(partial, target);
} catch (error) {
  rmSync(partial, { force: true });
  skip(`the C compiler failed (${error.message.split('\n')[0]})`);
}
