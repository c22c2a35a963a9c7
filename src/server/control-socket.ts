import { lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';

/** The kernel's limit for a Unix socket path (sun_path, less its NUL). */
const MAX_PATH = 107;
const MAX_REQUEST = 64;
const REQUEST_TIMEOUT_MS = 5000;

export function controlSocketOf(stateDir: string): string {
  return join(stateDir, 'moat.sock');
}

/**
 * `<state_dir>/moat.sock`: a Unix socket, mode 0600, on which a running
 * `moat serve` answers the request line `who` with one JSON line listing its
 * sessions. How `moat who` sees live sessions without a network port, and
 * only for whoever may read the server's state folder. Errors after it
 * listens go to `onError` (the caller logs them); the FTP server goes on.
 */
export async function openControlSocket(
  path: string,
  answers: Record<string, () => unknown>,
  onError: (error: Error) => void,
): Promise<Server> {
  if (Buffer.byteLength(path) > MAX_PATH) throw new Error(`${path}: too long for a Unix socket (at most ${MAX_PATH} bytes)`);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await removeStale(path);
  const server = createServer((socket) => {
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    let request = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      request += chunk;
      const end = request.indexOf('\n');
      if (end < 0 && request.length <= MAX_REQUEST) return;
      socket.removeAllListeners('data');
      const name = end >= 0 ? request.slice(0, end).trim() : '';
      const answer = Object.hasOwn(answers, name) ? answers[name] : undefined;
      let body: unknown;
      try {
        body = answer ? answer() : { error: 'unknown request' };
      } catch (error) {
        body = { error: `could not answer: ${(error as Error).message}` };
      }
      socket.end(JSON.stringify(body) + '\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // listen() binds at once, creating the file: under this umask it is 0600 from the start.
    const mask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        server.on('error', onError);
        resolve();
      });
    } finally {
      process.umask(mask);
    }
  });
  return server;
}

/** A socket file left by a server that died is removed; one a live server answers on is not. */
async function removeStale(path: string): Promise<void> {
  const st = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path}: another moat serve is running with this state_dir`);
  await unlink(path);
}
