#!/usr/bin/env -S node --max-semi-space-size=2
// The flag caps V8's young generation at 2 MiB per half: a burst of logins otherwise
// grows it to 16 MiB, which then stays resident (idle memory per connection: 11 → 4 KiB;
// throughput unchanged, docs/performance.md).
// Runs the compiled CLI when built (npm run build) and not older than the sources, else the
// TypeScript sources through tsx: a dist/ left from an earlier build never runs stale code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const sources = fileURLToPath(new URL('../src', import.meta.url));

function newestUnder(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return undefined; // an installed package: no dev dependencies, dist/ is what there is
  }
}

const built = existsSync(compiled);
const stale = built && existsSync(sources) && newestUnder(sources) > statSync(compiled).mtimeMs;
const loader = !built || stale ? await tsx() : undefined;
if (!built && !loader) {
  process.stderr.write('moat: neither a build (npm run build) nor tsx (npm install) is available\n');
  process.exit(1);
}
if (loader) {
  loader.register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
} else {
  await import(pathToFileURL(compiled).href);
}
