// `npm run bench`: Moat side by side with vsftpd, pure-ftpd, ProFTPD, pyftpdlib and ftp-srv.
// See bench/README.md for what each scenario measures.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ftpsrv } from './peers/ftpsrv.js';
import { moat } from './peers/moat.js';
import { proftpd } from './peers/proftpd.js';
import { pureftpd } from './peers/pureftpd.js';
import { pyftpdlib } from './peers/pyftpdlib.js';
import { portsFor, runDirFor, startServer, type Ctx, type Driver, type Running } from './peers/types.js';
import { vsftpd } from './peers/vsftpd.js';
import { cpuTable, jsonLine, markdown } from './lib/report.js';
import { describe, firstLogin, runScenario, SCENARIOS, skippedResult, type Env, type Opts, type Result, type Scenario } from './lib/scenarios.js';
import { buildLoadgen, dataBase, ensureSysUser, makeCert, prepareData, SYS_USER } from './lib/setup.js';
import { hookExit, log, run } from './lib/util.js';

const DRIVERS: Driver[] = [moat, vsftpd, pureftpd, proftpd, pyftpdlib, ftpsrv];
const C_SERVERS = new Set(['vsftpd', 'pure-ftpd', 'proftpd']);

const USAGE = `npm run bench -- [options]
  --scenarios a,b     ${SCENARIOS.join(',')} (default: all)
  --peers a,b         ${DRIVERS.map((d) => d.name).join(',')} (default: all)
  --duration SECONDS  length of the timed scenarios (small_files, connect_login; default 10, quick 3)
  --runs N            runs per scenario, the median is reported (default 3, quick 1)
  --quick             under 3 minutes: 256 MiB file, 3 s loads, 1 run
  --big               idle_mem also with 10,000 connections
  --json FILE         also write the JSON lines to FILE
  --serve             only start the servers and keep them running (for poking at them by hand)
  --client-ip IP      loopback source address of the load generator (default 127.0.0.1; another
                      address makes some servers do reverse DNS lookups)
  --sys-crypt METHOD  hash of the C servers' local user: sha512 (default, 5000 rounds) or yescrypt
                      (Debian 12's default for passwd, ~50 ms of CPU per login here)`;

function options(): { opts: Opts; scenarios: Scenario[]; peers: string[]; json?: string; bigMiB: number; crypt: 'yescrypt' | 'sha512'; serve: boolean } {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string' },
      peers: { type: 'string' },
      duration: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      big: { type: 'boolean', default: false },
      json: { type: 'string' },
      'client-ip': { type: 'string', default: '127.0.0.1' },
      'sys-crypt': { type: 'string', default: 'sha512' },
      serve: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const list = (v: string | undefined, all: readonly string[], what: string): string[] => {
    if (!v) return [...all];
    const got = v.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = got.filter((g) => !all.includes(g));
    if (bad.length) {
      console.error(`unknown ${what}: ${bad.join(', ')}\n\n${USAGE}`);
      process.exit(2);
    }
    return got;
  };
  const scenarios = list(values.scenarios, SCENARIOS, 'scenario') as Scenario[];
  // idle_mem runs first, on freshly started servers; the rest in the canonical order.
  scenarios.sort((a, b) => SCENARIOS.indexOf(a) - SCENARIOS.indexOf(b));
  const peers = list(values.peers, DRIVERS.map((d) => d.name), 'peer');
  const quick = values.quick;
  const num = (v: string | undefined, dflt: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      console.error(`not a positive number: ${v}`);
      process.exit(2);
    }
    return n;
  };
  const opts: Opts = {
    quick,
    big: values.big,
    runs: Math.round(num(values.runs, quick ? 1 : 3)),
    loadSecs: num(values.duration, quick ? 3 : 10),
    holdSecs: quick ? 1 : 5,
    smallClients: [50, 200],
    loginClients: 50,
    idleConns: values.big ? [1000, 10_000] : [1000],
    listReps: quick ? 3 : 5,
    clientIp: values['client-ip'],
  };
  const crypt = values['sys-crypt'];
  if (crypt !== 'yescrypt' && crypt !== 'sha512') {
    console.error(`--sys-crypt must be yescrypt or sha512\n\n${USAGE}`);
    process.exit(2);
  }
  return { opts, scenarios, peers, json: values.json, bigMiB: quick ? 256 : 1024, crypt, serve: values.serve };
}

async function main(): Promise<void> {
  hookExit();
  const { opts, scenarios, peers, json, bigMiB, crypt, serve } = options();
  if (process.getuid?.() !== 0) log('warning: not root; the C servers need root (they switch to the login user)');
  const started = Date.now();
  log(`scenarios ${scenarios.join(', ')}; servers ${peers.join(', ')}; ${opts.runs} run(s), ${opts.loadSecs}s loads${opts.quick ? ' (quick)' : ''}`);

  // ---- preparation ----
  const lg = buildLoadgen();
  const cert = makeCert();
  let owner: { uid: number; gid: number } | undefined;
  const skipReasons = new Map<string, string>();
  if (peers.some((p) => C_SERVERS.has(p))) {
    try {
      owner = ensureSysUser(path.join(dataBase(), 'root'), crypt);
    } catch (e) {
      for (const p of peers) if (C_SERVERS.has(p)) skipReasons.set(p, `no local user ${SYS_USER}: ${(e as Error).message}`);
    }
  }
  const ds = await prepareData(bigMiB, owner);
  log(`served folder ${ds.root}${ds.tmpfs ? ' (tmpfs)' : ' (NOT tmpfs)'}; load generator ${path.basename(lg.bin)}${lg.tls ? ' with OpenSSL' : ' (TLS via curl)'}`);
  const env: Env = { ds, lg, cert, opts };

  // ---- servers: all started up front, each on its own ports ----
  const running: (Running & { firstLoginMs?: number | null })[] = [];
  for (const d of DRIVERS.filter((x) => peers.includes(x.name))) {
    if (skipReasons.has(d.name)) {
      log(`${d.name}: skipped: ${skipReasons.get(d.name)}`);
      continue;
    }
    const index = DRIVERS.indexOf(d);
    const ctx: Ctx = { ds, cert, loadgen: lg, ...portsFor(index, d.name), runDir: runDirFor(d.name), nofile: 65536 };
    try {
      log(`${d.name}: preparing`);
      const launch = await d.prepare(ctx);
      if (C_SERVERS.has(d.name)) launch.notes = [...(launch.notes ?? []), `${SYS_USER}'s password hash: ${crypt}`];
      const srv = await startServer(d.name, ctx, launch);
      running.push(srv);
    } catch (e) {
      const why = (e as Error).message;
      skipReasons.set(d.name, why);
      log(`${d.name}: skipped: ${why}`);
    }
  }
  if (serve) {
    for (const srv of running) console.log(`${srv.name}: ftp://${srv.user}:${srv.password}@127.0.0.1:${srv.port}/ (pid ${srv.pid}, log ${srv.logFile})`);
    log('servers are running; Ctrl-C stops them');
    await new Promise(() => {});
  }
  for (const srv of running) {
    srv.firstLoginMs = await firstLogin(env, srv);
    if (srv.firstLoginMs === null) log(`${srv.name}: warning: the first login failed (user ${srv.user})`);
  }

  // ---- scenarios ----
  const results: Result[] = [];
  for (const s of scenarios) {
    for (const name of peers) {
      const srv = running.find((r) => r.name === name);
      if (!srv) {
        results.push(skippedResult(s, name, skipReasons.get(name) ?? 'not started'));
        continue;
      }
      const t = Date.now();
      let rs: Result[];
      try {
        rs = await runScenario(s, env, srv);
      } catch (e) {
        rs = [skippedResult(s, name, `bench error: ${(e as Error).message}`)];
      }
      for (const r of rs) {
        results.push(r);
        log(`${s}${r.variant ? ` (${r.variant})` : ''} · ${name}: ${describe(r)} [${((Date.now() - t) / 1000).toFixed(1)}s]`);
      }
    }
  }
  for (const srv of running) await srv.stop();

  // ---- output ----
  const meta = {
    date: new Date().toISOString(),
    host: `${os.cpus().length}× ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`,
    quick: opts.quick,
  };
  const versions = Object.fromEntries(running.map((r) => [r.name, r.version]));
  const lines = results.map((r) => jsonLine(r, { date: meta.date, version: versions[r.server] ?? null }));
  console.log('\n## JSON (one line per scenario and server)\n');
  for (const l of lines) console.log(l);
  if (json) writeFileSync(json, lines.join('\n') + '\n');
  const servers = peers;
  console.log(`\n## Results (${meta.date}, ${meta.host}${opts.quick ? ', --quick' : ''}, ${opts.runs} run(s), median)\n`);
  console.log(markdown(results, servers));
  console.log('\n' + cpuTable(results, servers));
  console.log('\nServers:');
  for (const name of peers) {
    const r = running.find((x) => x.name === name);
    console.log(`- ${name}: ${r ? `${r.version}${r.notes?.length ? ` — ${r.notes.join('; ')}` : ''}` : `skipped: ${skipReasons.get(name)}`}`);
  }
  console.log(`- load generator: bench/loadgen/ftpload.c (gcc -O2, ${lg.tls ? `${run('openssl', ['version']).stdout.trim().split(' ').slice(0, 2).join(' ')}` : 'no TLS, curl for FTPS'}), client source ${opts.clientIp}; served folder ${ds.tmpfs ? 'on tmpfs' : 'on disk'}`);
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
