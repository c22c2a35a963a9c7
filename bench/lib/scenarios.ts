// The scenarios: each drives the C load generator against one running server and returns result rows.
import { spawn } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Running } from '../peers/types.js';
import { HOST } from '../peers/types.js';
import { sha1File, type DataSet, type Loadgen, type Cert } from './setup.js';
import { median, runAsync, sleep, track, treeCpu, treeMem } from './util.js';

export const SCENARIOS = ['idle_mem', 'retr_1g', 'stor_1g', 'retr_1g_tls', 'small_files', 'connect_login', 'list_10k'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Opts {
  quick: boolean;
  big: boolean;
  runs: number;
  loadSecs: number; // duration of the timed scenarios
  holdSecs: number; // idle_mem hold
  smallClients: number[];
  loginClients: number;
  idleConns: number[];
  listReps: number;
  clientIp: string;
}

export interface Env {
  ds: DataSet;
  lg: Loadgen;
  cert: Cert;
  opts: Opts;
}

export interface Result {
  scenario: Scenario;
  variant?: string;
  server: string;
  ok: boolean;
  skipped?: string;
  metrics: Record<string, number | string | boolean | null>;
  errors: number;
  server_cpu_s: number | null;
  client_cpu_s: number | null;
  runs: unknown[];
  notes: string[];
}

type J = Record<string, unknown> & { ok?: boolean; error?: string; client_cpu_s?: number };

function base(scenario: Scenario, srv: Running, variant?: string): Result {
  return { scenario, variant, server: srv.name, ok: true, metrics: {}, errors: 0, server_cpu_s: 0, client_cpu_s: 0, runs: [], notes: [] };
}

export function skippedResult(scenario: Scenario, server: string, why: string, variant?: string): Result {
  return { scenario, variant, server, ok: false, skipped: why, metrics: {}, errors: 0, server_cpu_s: null, client_cpu_s: null, runs: [], notes: [] };
}

function lastJson(out: string): J | undefined {
  const lines = out.trim().split('\n').filter((l) => l.startsWith('{'));
  try {
    return lines.length ? (JSON.parse(lines[lines.length - 1]!) as J) : undefined;
  } catch {
    return undefined;
  }
}

/** Run the load generator once against a server, measuring the server tree's CPU around it. */
async function loadgen(env: Env, srv: Running, mode: string, args: string[], timeoutSecs: number): Promise<{ j: J; serverCpu: number }> {
  const full = [mode, '-H', HOST, '-p', String(srv.port), '-u', srv.user, '-w', srv.password, '-b', env.opts.clientIp, ...args];
  const cpu0 = treeCpu(srv.pid);
  const r = await runAsync(env.lg.bin, full, { timeoutMs: timeoutSecs * 1000 });
  const serverCpu = treeCpu(srv.pid) - cpu0;
  const j = lastJson(r.stdout) ?? { ok: false, error: `load generator exit ${r.code}: ${r.stderr.trim().slice(-200) || 'no output'}` };
  return { j, serverCpu };
}

function add(res: Result, j: J, serverCpu: number): void {
  res.runs.push(j);
  res.server_cpu_s = round((res.server_cpu_s ?? 0) + serverCpu, 3);
  res.client_cpu_s = round((res.client_cpu_s ?? 0) + Number(j.client_cpu_s ?? 0), 3);
}

export function round(x: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function fail(res: Result, why: string): void {
  res.ok = false;
  res.errors++;
  if (!res.notes.includes(why)) res.notes.push(why);
}

// ---- scenarios -----------------------------------------------------------------------------------

/*
 * WARM_UP: retr_1g, retr_1g_tls, stor_1g and list_10k give every server one operation that is not
 * counted before its measured runs, so the figures are steady-state ones. On this VM the first
 * write into tmpfs pages that were never touched (or were just freed) runs at half speed or less
 * (dd: 0.7 vs 2.5 GB/s), and which server met those pages first depended only on the order the
 * servers ran in; the first listings also pay for a cold dentry cache and, in Moat, for JIT
 * compilation and starting its stat workers. A JIT takes a few listings to settle: thirty 10,000-entry
 * LISTs in a row from a fresh Moat took 57, 45, 31, 24, 29, 29, 22, 24, 21, 21 ms, then 17-26 (median
 * 20); so list_10k warms every server up with LIST_WARM_UP listings of each kind.
 */
const LIST_WARM_UP = 5;

/** A warm-up is not counted (see WARM_UP), but one that failed is said, beside the figures it precedes. */
function warmedUp(res: Result, j: J): void {
  if (!j.ok) res.notes.push(`warm-up failed: ${String(j.error)}`);
}

async function retr(env: Env, srv: Running, tls: boolean): Promise<Result[]> {
  const res = base(tls ? 'retr_1g_tls' : 'retr_1g', srv);
  if (tls && srv.tls !== true) return [skippedResult(res.scenario, srv.name, srv.tls)];
  const mbps: number[] = [];
  const once = () => (tls && !env.lg.tls ? curlTls(env, srv) : loadgen(env, srv, 'retr', ['-f', env.ds.big, '-E', ...(tls ? ['-T'] : [])], 300));
  warmedUp(res, (await once()).j);
  for (let i = 0; i < env.opts.runs; i++) {
    const { j, serverCpu } = await once();
    add(res, j, serverCpu);
    if (!j.ok) fail(res, String(j.error));
    else if (j.bytes !== env.ds.bigBytes) fail(res, `short transfer: ${String(j.bytes)} of ${env.ds.bigBytes} bytes`);
    else mbps.push(Number(j.mbps));
    if (tls && j.ok) {
      res.metrics.tls_version = (j.tls_version as string) ?? null;
      res.metrics.cipher = (j.cipher as string) ?? null;
      res.metrics.tls_session_reused = (j.tls_reused as boolean) ?? null;
    }
  }
  res.ok = mbps.length > 0;
  res.metrics.mb_per_s = mbps.length ? round(median(mbps)) : null;
  res.metrics.bytes = env.ds.bigBytes;
  return [res];
}

/** Fallback for a load generator built without OpenSSL: curl over explicit FTPS. */
async function curlTls(env: Env, srv: Running): Promise<{ j: J; serverCpu: number }> {
  const url = `ftp://${HOST}:${srv.port}/${env.ds.big}`;
  const cpu0 = treeCpu(srv.pid);
  const r = await runAsync(env.lg.bin, [
    'exec', '--', 'curl', '-sS', '-k', '--ssl-reqd', '--ftp-pasv', '--interface', env.opts.clientIp, '-u', `${srv.user}:${srv.password}`, '-o', '/dev/null',
    '-w', '{"ok":true,"bytes":%{size_download},"secs":%{time_total},"mbps_curl":%{speed_download}}\\n', url,
  ]);
  const serverCpu = treeCpu(srv.pid) - cpu0;
  const lines = r.stdout.trim().split('\n');
  const exec = lastJson(r.stdout) ?? {};
  let j: J;
  try {
    j = JSON.parse(lines.find((l) => l.startsWith('{"ok"')) ?? '') as J;
    j.mbps = Number(j.mbps_curl) / 1e6;
    j.client_cpu_s = exec.client_cpu_s;
    j.via = 'curl';
  } catch {
    j = { ok: false, error: `curl failed: ${r.stderr.trim().slice(-200)}` };
  }
  return { j, serverCpu };
}

async function stor(env: Env, srv: Running): Promise<Result[]> {
  const res = base('stor_1g', srv);
  const mbps: number[] = [];
  const src = path.join(env.ds.root, env.ds.big);
  const warmUp = path.join(env.ds.root, `stor-${srv.name}-warm-up.bin`);
  warmedUp(res, (await loadgen(env, srv, 'stor', ['-f', path.basename(warmUp), '-l', src, '-E'], 300)).j);
  rmSync(warmUp, { force: true });
  for (let i = 0; i < env.opts.runs; i++) {
    const remote = `stor-${srv.name}-${i}.bin`;
    const local = path.join(env.ds.root, remote);
    rmSync(local, { force: true });
    const { j, serverCpu } = await loadgen(env, srv, 'stor', ['-f', remote, '-l', src, '-E'], 300);
    add(res, j, serverCpu);
    if (!j.ok) fail(res, String(j.error));
    else if (!existsSync(local)) fail(res, `stored file ${remote} not found in the served folder`);
    else if (statSync(local).size !== env.ds.bigBytes) fail(res, `stored file has ${statSync(local).size} bytes, not ${env.ds.bigBytes}`);
    else if ((await sha1File(local)) !== env.ds.bigSha1) fail(res, 'stored file differs (sha1 mismatch)');
    else mbps.push(Number(j.mbps));
    rmSync(local, { force: true });
  }
  res.ok = mbps.length > 0;
  res.metrics.mb_per_s = mbps.length ? round(median(mbps)) : null;
  res.metrics.verified = mbps.length === env.opts.runs ? 'size+sha1' : 'FAILED';
  return [res];
}

async function small(env: Env, srv: Running): Promise<Result[]> {
  const out: Result[] = [];
  for (const clients of env.opts.smallClients) {
    const res = base('small_files', srv, `${clients} clients`);
    res.metrics.clients = clients;
    const rates: number[] = [];
    const p99: number[] = [];
    let done = 0;
    for (let i = 0; i < env.opts.runs; i++) {
      const args = ['-f', env.ds.small, '-z', String(env.ds.smallBytes), '-c', String(clients), '-d', String(env.opts.loadSecs), '-t', '20'];
      const { j, serverCpu } = await loadgen(env, srv, 'small', args, env.opts.loadSecs + 120);
      add(res, j, serverCpu);
      if (!j.ok) {
        fail(res, String(j.error));
        continue;
      }
      res.errors += Number(j.errors ?? 0);
      for (const [k, v] of Object.entries((j.error_kinds as Record<string, number>) ?? {})) {
        const note = `error ${k}`;
        if (!res.notes.some((n) => n.startsWith(note))) res.notes.push(`${note} ×${v}`);
      }
      if (Number(j.ready) < clients) res.notes.push(`only ${String(j.ready)} of ${clients} clients logged in at start`);
      rates.push(Number(j.rate));
      p99.push(Number(j.p99_ms));
      done += Number(j.done);
    }
    res.ok = rates.length > 0;
    res.metrics.files_per_s = rates.length ? round(median(rates)) : null;
    res.metrics.p99_ms = p99.length ? round(median(p99), 2) : null;
    res.metrics.files = done;
    out.push(res);
  }
  return out;
}

async function login(env: Env, srv: Running & { firstLoginMs?: number | null }): Promise<Result[]> {
  const res = base('connect_login', srv);
  const rates: number[] = [];
  res.metrics.clients = env.opts.loginClients;
  for (let i = 0; i < env.opts.runs; i++) {
    const args = ['-c', String(env.opts.loginClients), '-d', String(env.opts.loadSecs), '-t', '20'];
    const { j, serverCpu } = await loadgen(env, srv, 'login', args, env.opts.loadSecs + 120);
    add(res, j, serverCpu);
    if (!j.ok) {
      fail(res, String(j.error));
      continue;
    }
    res.errors += Number(j.errors ?? 0);
    for (const [k, v] of Object.entries((j.error_kinds as Record<string, number>) ?? {})) res.notes.push(`error ${k} ×${v}`);
    rates.push(Number(j.rate));
    res.metrics.warm_login_ms = round(Number(j.first_login_ms), 2);
    res.metrics.p99_ms = round(Number(j.p99_ms), 2);
  }
  res.ok = rates.length > 0;
  res.metrics.logins_per_s = rates.length ? round(median(rates)) : null;
  res.metrics.first_login_ms = srv.firstLoginMs ?? null;
  return [res];
}

/** The very first login after the server started (password hash verified for real). */
export async function firstLogin(env: Env, srv: Running): Promise<number | null> {
  const { j } = await loadgen(env, srv, 'login', ['-c', '1', '-d', '0'], 60);
  return j.ok ? round(Number(j.first_login_ms), 2) : null;
}

async function idle(env: Env, srv: Running): Promise<Result[]> {
  const out: Result[] = [];
  for (const conns of env.opts.idleConns) {
    const res = base('idle_mem', srv, `${conns} conns`);
    res.metrics.conns = conns;
    await sleep(300);
    const before = treeMem(srv.pid);
    const cpu0 = treeCpu(srv.pid);
    const threads = String(Math.min(16, Math.max(1, conns / 100)));
    // One source address has ~7,200 ephemeral ports towards one server here (ftpload.c): more connections use more addresses.
    const sources = String(Math.ceil(conns / 5000));
    const args = ['idle', '-H', HOST, '-p', String(srv.port), '-u', srv.user, '-w', srv.password, '-b', env.opts.clientIp, '-s', sources, '-n', String(conns), '-j', threads, '-t', '60'];
    const child = track(spawn(env.lg.bin, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    const lines = createInterface({ input: child.stdout! });
    const it = lines[Symbol.asyncIterator]();
    const timeout = setTimeout(() => child.kill('SIGKILL'), (conns / 20 + 120) * 1000);
    let ready: J | undefined;
    let final: J | undefined;
    try {
      const first = await it.next();
      ready = first.done ? undefined : (JSON.parse(first.value) as J);
      if (ready) {
        await sleep(env.opts.holdSecs * 1000);
        const after = treeMem(srv.pid);
        const held = Number(ready.ok);
        res.metrics.logged_in = held;
        res.metrics.login_secs = Number(ready.secs);
        res.metrics.procs = after.procs;
        res.metrics.rss_kib_per_conn = held ? round((after.rssKiB - before.rssKiB) / held, 2) : null;
        res.metrics.pss_kib_per_conn = held ? round((after.pssKiB - before.pssKiB) / held, 2) : null;
        res.metrics.rss_base_kib = before.rssKiB;
        res.metrics.rss_held_kib = after.rssKiB;
        res.metrics.pss_held_kib = after.pssKiB;
        child.stdin!.write('go\n');
        const second = await it.next();
        final = second.done ? undefined : (JSON.parse(second.value) as J);
      }
    } catch (e) {
      fail(res, `idle load generator: ${String(e)}`);
    }
    clearTimeout(timeout);
    child.stdin!.end();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('close', r)));
    res.server_cpu_s = round(treeCpu(srv.pid) - cpu0, 3);
    if (!final) fail(res, 'idle load generator gave no final report');
    else {
      add(res, final, 0);
      res.client_cpu_s = round(Number(final.client_cpu_s ?? 0), 3);
      res.metrics.noop_ok = Number(final.noop_ok);
      res.errors += Number(final.login_failed ?? 0) + Number(final.noop_failed ?? 0);
      if (Number(final.noop_ok) !== conns) fail(res, `${conns - Number(final.noop_ok)} of ${conns} connections did not answer NOOP (${JSON.stringify(final.error_kinds)})`);
    }
    await sleep(500); // let the server reap the closed sessions before anything else runs
    out.push(res);
  }
  return out;
}

async function list(env: Env, srv: Running): Promise<Result[]> {
  const res = base('list_10k', srv);
  const ms: Record<'LIST' | 'MLSD', number[]> = { LIST: [], MLSD: [] };
  warmedUp(res, (await loadgen(env, srv, 'list', ['-f', env.ds.listDir, '-r', String(LIST_WARM_UP)], 300)).j);
  for (let i = 0; i < env.opts.runs; i++) {
    const { j, serverCpu } = await loadgen(env, srv, 'list', ['-f', env.ds.listDir, '-r', String(env.opts.listReps)], 300);
    add(res, j, serverCpu);
    if (!j.ok) {
      fail(res, String(j.error));
      continue;
    }
    for (const cmd of ['LIST', 'MLSD'] as const) {
      const r = j[cmd] as { code: number; entries: number; ms: number[] } | undefined;
      if (!r) continue;
      if (r.code !== 226 && r.code !== 250) {
        const note = `${cmd} answered ${r.code}`;
        if (!res.notes.includes(note)) res.notes.push(note);
      } else {
        ms[cmd].push(...r.ms);
        res.metrics[`${cmd.toLowerCase()}_entries`] = r.entries;
        if (r.entries !== env.ds.listCount) {
          const note = `${cmd} listed ${r.entries} of ${env.ds.listCount} entries`;
          if (!res.notes.includes(note)) res.notes.push(note);
        }
      }
    }
  }
  res.metrics.list_ms = ms.LIST.length ? round(median(ms.LIST), 2) : null;
  res.metrics.mlsd_ms = ms.MLSD.length ? round(median(ms.MLSD), 2) : null;
  res.ok = ms.LIST.length > 0 || ms.MLSD.length > 0;
  return [res];
}

export async function runScenario(s: Scenario, env: Env, srv: Running & { firstLoginMs?: number | null }): Promise<Result[]> {
  if (!srv.alive()) return [skippedResult(s, srv.name, 'server process has exited')];
  switch (s) {
    case 'retr_1g':
      return retr(env, srv, false);
    case 'retr_1g_tls':
      return retr(env, srv, true);
    case 'stor_1g':
      return stor(env, srv);
    case 'small_files':
      return small(env, srv);
    case 'connect_login':
      return login(env, srv);
    case 'idle_mem':
      return idle(env, srv);
    case 'list_10k':
      return list(env, srv);
  }
}

export function describe(r: Result): string {
  if (r.skipped) return `skipped: ${r.skipped}`;
  const m = r.metrics;
  const parts: string[] = [];
  const show = (k: string, unit: string): void => {
    if (m[k] !== undefined && m[k] !== null) parts.push(`${String(m[k])} ${unit}`);
  };
  show('mb_per_s', 'MB/s');
  show('files_per_s', 'files/s');
  show('logins_per_s', 'logins/s');
  show('first_login_ms', 'ms first login');
  show('rss_kib_per_conn', 'KiB/conn RSS');
  show('pss_kib_per_conn', 'KiB/conn PSS');
  show('list_ms', 'ms LIST');
  show('mlsd_ms', 'ms MLSD');
  if (m.cipher) parts.push(`${String(m.tls_version)} ${String(m.cipher)}`);
  if (r.errors) parts.push(`${r.errors} errors`);
  parts.push(`cpu server ${r.server_cpu_s ?? '-'}s client ${r.client_cpu_s ?? '-'}s`);
  if (r.notes.length) parts.push(`(${r.notes.slice(0, 3).join('; ')})`);
  return (r.ok ? '' : 'FAILED: ') + parts.join(', ');
}

