// Small helpers for the benchmark: running commands, logging, waiting for ports, child cleanup.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const PROJECT_DIR = path.dirname(BENCH_DIR);
export const CACHE_DIR = path.join(BENCH_DIR, '.cache');

const t0 = Date.now();

/** A progress line on stderr, so stdout stays for the results. */
export function log(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s}s] ${msg}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (synchronously; used for setup steps only). */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const err = r.error ? String(r.error.message) + '\n' : '';
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: err + (r.stderr ?? '') };
}

export function tail(s: string, lines = 6): string {
  return s.trim().split('\n').slice(-lines).join(' | ');
}

/** Run a command asynchronously, collecting its output. */
export function runAsync(cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = track(spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', (e) => (stderr += String(e)));
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : -1), stdout, stderr });
    });
  });
}

// ---- child processes we started, killed on exit --------------------------------------------

const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Kill a child we started, its process group (if it leads one) and every descendant. */
export function killTree(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  const pids = [pid, ...descendants(pid)];
  try {
    process.kill(-pid, signal);
  } catch {
    /* not a group leader, or gone */
  }
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      /* gone */
    }
  }
}

export function killAll(): void {
  for (const c of children) if (c.pid) killTree(c.pid, 'SIGKILL');
}

let exitHooked = false;
export function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping servers and load generators`);
      killAll();
      process.exit(130);
    });
  }
}

// ---- /proc ------------------------------------------------------------------------------------

interface ProcStat {
  pid: number;
  ppid: number;
  ticks: number; // utime + stime + cutime + cstime
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] = state (field 3), so field n is f[n - 3]
    return { pid, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

export function descendants(root: number, stats = allStats()): number[] {
  const kids = new Map<number, number[]>();
  for (const s of stats) {
    const list = kids.get(s.ppid) ?? [];
    list.push(s.pid);
    kids.set(s.ppid, list);
  }
  const out: number[] = [];
  const stack = [...(kids.get(root) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

const CLK_TCK = 100;

/** CPU seconds used by a process tree so far: live processes plus the children they have reaped. */
export function treeCpu(root: number): number {
  const stats = allStats();
  const tree = new Set([root, ...descendants(root, stats)]);
  let ticks = 0;
  for (const s of stats) if (tree.has(s.pid)) ticks += s.ticks;
  return ticks / CLK_TCK;
}

export interface TreeMem {
  procs: number;
  rssKiB: number;
  pssKiB: number;
}

/** RSS and PSS (from smaps_rollup) summed over a process tree. */
export function treeMem(root: number): TreeMem {
  const pids = [root, ...descendants(root)];
  let rss = 0;
  let pss = 0;
  let procs = 0;
  for (const p of pids) {
    try {
      const s = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      procs++;
    } catch {
      /* exited meanwhile */
    }
  }
  return { procs, rssKiB: rss, pssKiB: pss };
}

// ---- sockets ------------------------------------------------------------------------------------

/** Wait until something on host:port answers with an FTP 220 greeting. */
export async function waitFtp(host: string, port: number, timeoutMs: number, alive: () => boolean): Promise<string | undefined> {
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < end) {
    if (!alive()) return 'exited';
    const got = await new Promise<string>((resolve) => {
      const s = net.connect({ host, port });
      let buf = '';
      const done = (r: string): void => {
        s.destroy();
        resolve(r);
      };
      s.setTimeout(2000, () => done('timeout'));
      s.on('error', (e) => done(String(e.message)));
      s.on('data', (d) => {
        buf += d.toString();
        const lines = buf.split('\n');
        if (lines.some((l) => /^220 /.test(l))) done('ok');
        else if (/^\d{3} /m.test(buf)) done(buf.trim());
      });
    });
    if (got === 'ok') return undefined;
    last = got;
    await sleep(150);
  }
  return last;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
