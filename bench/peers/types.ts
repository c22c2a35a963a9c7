// What every server driver provides, and the generic start/stop of a server process.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, closeSync } from 'node:fs';
import path from 'node:path';
import type { Cert, DataSet, Loadgen } from '../lib/setup.js';
import { CACHE_DIR, killTree, log, sleep, tail, track, waitFtp } from '../lib/util.js';

export const HOST = '127.0.0.1';

export interface Ctx {
  ds: DataSet;
  cert: Cert;
  loadgen: Loadgen;
  /** Ports of this server: control and passive range, inside its own block of 1000 in 50000-59999. */
  port: number;
  pasvMin: number;
  pasvMax: number;
  /** A folder for this server's config, logs and state. */
  runDir: string;
  nofile: number;
}

/** How to launch a server, as prepared by its driver. */
export interface Launch {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  user: string;
  password: string;
  /** Explicit FTPS available; otherwise why not. */
  tls: true | string;
  version: string;
  notes?: string[];
}

export interface Driver {
  name: string;
  /** Fetch, unpack and configure; throw an Error whose message says why the peer must be skipped. */
  prepare(ctx: Ctx): Promise<Launch>;
}

export interface Running extends Launch {
  name: string;
  pid: number;
  port: number;
  logFile: string;
  alive(): boolean;
  stop(): Promise<void>;
}

/**
 * Server i gets control port 50021 + 1000 i and passive ports 50100-50999 + 1000 i. pure-ftpd caps its
 * clients at half its passive range, so it gets 56000-59999 instead (2,000 clients at most).
 */
export function portsFor(index: number, name: string): { port: number; pasvMin: number; pasvMax: number } {
  const base = 50000 + index * 1000;
  if (name === 'pure-ftpd') return { port: base + 21, pasvMin: 56000, pasvMax: 59999 };
  return { port: base + 21, pasvMin: base + 100, pasvMax: base + 999 };
}

export function runDirFor(name: string): string {
  const d = path.join(CACHE_DIR, 'run', name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Start a prepared server (raising its open-files limit) and wait for its 220 greeting. */
export async function startServer(name: string, ctx: Ctx, l: Launch): Promise<Running> {
  const logFile = path.join(ctx.runDir, 'server.log');
  const fd = openSync(logFile, 'w');
  // exec keeps the pid, so the pid we hold is the server itself.
  const child = track(
    spawn('/bin/sh', ['-c', `ulimit -n ${ctx.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`, l.cmd, ...l.args], {
      cwd: l.cwd ?? ctx.runDir,
      env: l.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    }),
  );
  closeSync(fd);
  let exited = false;
  child.on('exit', () => (exited = true));
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (exited) return;
    killTree(pid, 'SIGTERM');
    for (let i = 0; i < 30 && !exited; i++) await sleep(100);
    if (!exited) killTree(pid, 'SIGKILL');
    await sleep(50);
  };
  const why = await waitFtp(HOST, ctx.port, 30_000, () => !exited);
  if (why) {
    await stop();
    let out = '';
    try {
      out = readFileSync(logFile, 'utf8');
    } catch {
      /* none */
    }
    throw new Error(`did not come up (${why}): ${tail(out, 4) || 'no output'}`);
  }
  log(`${name} is up (pid ${pid}, port ${ctx.port}, passive ${ctx.pasvMin}-${ctx.pasvMax})`);
  return { ...l, name, pid, port: ctx.port, logFile, alive: () => !exited, stop };
}
