import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const repo = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  bin: Record<string, string>;
  main: string;
  types: string;
  scripts: Record<string, string>;
  files: string[];
};

/** What `npm pack` would put in the tarball (without running the build: dist/ may not exist here). */
function packedFiles(): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo }, (error, stdout) => {
      if (error) return reject(error);
      resolve((JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path));
    });
  });
}

test('the published package is built before packing and carries what bin, main and the install script need', async () => {
  // dist/ is git-ignored, so without prepack and `files` a tarball had no compiled code at all.
  assert.equal(pkg.scripts['prepack'], 'npm run build');
  const covered = (path: string): boolean => pkg.files.some((entry) => (entry.endsWith('/') ? path.startsWith(entry) : new RegExp(`^${entry.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*')}$`).test(path)));
  const needed = [...Object.values(pkg.bin), pkg.main, pkg.types, 'dist/cli/main.js', 'scripts/build-native.mjs', 'moat.example.toml'];
  const native = /\[([^\]]*)\]\.map\(\(file\) => join\(root, 'native', file\)\)/.exec(readFileSync(new URL('../scripts/build-native.mjs', import.meta.url), 'utf8'));
  assert.ok(native, 'the native source list in scripts/build-native.mjs');
  needed.push(...native[1]!.split(',').map((f) => `native/${f.trim().replace(/'/g, '')}`), 'native/moat.h');
  for (const path of needed) assert.ok(covered(path.replace(/^\.\//, '')), `${path} is not in package.json "files"`);
  const packed = await packedFiles();
  for (const path of needed.filter((p) => !p.startsWith('dist/'))) assert.ok(packed.includes(path.replace(/^\.\//, '')), `npm pack leaves out ${path}`);
  assert.ok(!packed.some((p) => p.startsWith('test/') || p.startsWith('bench/') || p.startsWith('src/')), 'tests, bench and sources stay out');
});
