// Everything the bench prepares for itself: Debian packages unpacked into the cache, the load
// generator, a self-signed certificate, the served files and the system user for the C servers.
import { createHash, randomFillSync } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, CACHE_DIR, log, run, tail } from './util.js';

// ---- Debian packages -------------------------------------------------------------------------

let aptUpdated = false;

function hasCandidate(pkg: string): boolean {
  const r = run('apt-cache', ['policy', pkg]);
  const m = /Candidate:\s*(\S+)/.exec(r.stdout);
  return !!m && m[1] !== '(none)';
}

function aptUpdateOnce(): void {
  if (aptUpdated) return;
  aptUpdated = true;
  log('apt-get update (package lists are missing or stale)');
  const r = run('apt-get', ['update', '-qq'], { timeoutMs: 300_000 });
  if (r.code !== 0) log(`apt-get update failed: ${tail(r.stderr, 3)}`);
}

function installed(pkg: string): boolean {
  const r = run('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return r.code === 0 && r.stdout.includes('install ok installed');
}

/** Download a .deb into the cache (once) and return its path. */
function downloadDeb(pkg: string): string {
  const dir = path.join(CACHE_DIR, 'debs');
  mkdirSync(dir, { recursive: true });
  const have = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (have) return path.join(dir, have);
  if (!hasCandidate(pkg)) aptUpdateOnce();
  if (!hasCandidate(pkg)) throw new Error(`no Debian package named ${pkg} (apt-cache policy has no candidate)`);
  log(`apt-get download ${pkg}`);
  const r = run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', pkg], { cwd: dir, timeoutMs: 300_000 });
  const got = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (r.code !== 0 || !got) throw new Error(`apt-get download ${pkg} failed: ${tail(r.stderr, 3)}`);
  return path.join(dir, got);
}

function debDepends(deb: string): string[] {
  const r = run('dpkg-deb', ['-f', deb, 'Depends']);
  return r.stdout
    .split(',')
    .map((d) => d.trim().split('|')[0]!.trim().split(/[\s(:]/)[0]!)
    .filter(Boolean);
}

/**
 * Unpack packages (and the library packages they need that the system lacks) into tree.
 * Returns the library search path for the tree.
 */
export function extractPackages(name: string, pkgs: string[]): { tree: string; libPath: string } {
  const tree = path.join(CACHE_DIR, 'pkgs', name);
  const stamp = path.join(tree, '.extracted');
  const want = pkgs.join(' ');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== want) {
    rmSync(tree, { recursive: true, force: true });
    mkdirSync(tree, { recursive: true });
    const seen = new Set<string>();
    const queue = [...pkgs];
    while (queue.length) {
      const pkg = queue.shift()!;
      if (seen.has(pkg)) continue;
      seen.add(pkg);
      const deb = downloadDeb(pkg);
      const r = run('dpkg', ['-x', deb, tree]);
      if (r.code !== 0) throw new Error(`dpkg -x ${path.basename(deb)} failed: ${tail(r.stderr, 3)}`);
      // Libraries the system does not have come along; other dependencies (debconf, adduser, ...)
      // are only needed by the maintainer scripts, which we never run.
      for (const dep of debDepends(deb)) {
        if (dep.startsWith('lib') && !seen.has(dep) && !installed(dep)) queue.push(dep);
      }
    }
    writeFileSync(stamp, want);
  }
  const libDirs = ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib', 'lib'].map((d) => path.join(tree, d)).filter(existsSync);
  return { tree, libPath: libDirs.join(':') };
}

/** ldd a binary with the tree's libraries; throws naming the libraries still missing. */
export function checkLibs(binary: string, libPath: string): void {
  const r = run('ldd', [binary], { env: { ...process.env, LD_LIBRARY_PATH: libPath } });
  const missing = r.stdout
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(' ')[0]);
  if (missing.length) throw new Error(`${path.basename(binary)} needs libraries not found: ${missing.join(', ')}`);
}

// ---- load generator ----------------------------------------------------------------------------

export interface Loadgen {
  bin: string;
  tls: boolean;
}

function hasOpenSslHeaders(): boolean {
  return existsSync('/usr/include/openssl/ssl.h');
}

export function buildLoadgen(): Loadgen {
  const src = path.join(BENCH_DIR, 'loadgen', 'ftpload.c');
  const code = readFileSync(src);
  if (!hasOpenSslHeaders()) {
    log('libssl-dev is missing: apt-get install libssl-dev (for the TLS load generator)');
    aptUpdateOnce();
    const r = run('apt-get', ['install', '-y', '-q', 'libssl-dev'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 300_000 });
    if (r.code !== 0) log(`could not install libssl-dev: ${tail(r.stderr, 2)}; TLS will use curl`);
  }
  const tls = hasOpenSslHeaders();
  const hash = createHash('sha1').update(code).update(tls ? 'tls' : 'plain').digest('hex').slice(0, 12);
  const bin = path.join(CACHE_DIR, `ftpload-${hash}`);
  if (!existsSync(bin)) {
    log(`gcc: building the load generator (${tls ? 'with OpenSSL' : 'without TLS'})`);
    mkdirSync(CACHE_DIR, { recursive: true });
    const args = ['-O2', '-pthread', '-Wall', '-o', bin, src];
    if (tls) args.push('-lssl', '-lcrypto');
    else args.splice(0, 0, '-DNO_TLS');
    const r = run('gcc', args);
    if (r.code !== 0) throw new Error(`gcc failed: ${tail(r.stderr, 8)}`);
  }
  return { bin, tls };
}

// ---- certificate ---------------------------------------------------------------------------------

export interface Cert {
  cert: string;
  key: string;
  pem: string; // cert + key in one file (pure-ftpd)
}

export function makeCert(): Cert {
  const dir = path.join(CACHE_DIR, 'tls');
  const c: Cert = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem'), pem: path.join(dir, 'both.pem') };
  if (existsSync(c.pem)) return c;
  mkdirSync(dir, { recursive: true });
  log('openssl: self-signed certificate for the FTPS scenario');
  const r = run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', c.key, '-out', c.cert,
  ]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${tail(r.stderr, 3)}`);
  writeFileSync(c.pem, readFileSync(c.cert, 'utf8') + readFileSync(c.key, 'utf8'), { mode: 0o600 });
  return c;
}

// ---- served files --------------------------------------------------------------------------------

export interface DataSet {
  root: string; // the served folder
  tmpfs: boolean;
  big: string; // file name inside root
  bigBytes: number;
  bigSha1: string;
  small: string;
  smallBytes: number;
  listDir: string;
  listCount: number;
}

function isTmpfs(dir: string): boolean {
  const r = run('stat', ['-f', '-c', '%T', dir]);
  return r.stdout.trim() === 'tmpfs';
}

export async function sha1File(file: string): Promise<string> {
  const h = createHash('sha1');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function writeRandomFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  const buf = Buffer.allocUnsafe(8 << 20);
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, buf.length);
    randomFillSync(buf, 0, n);
    writeSync(fd, buf, 0, n);
    left -= n;
  }
  closeSync(fd);
}

/** Where the served folder lives: on tmpfs (/dev/shm) where there is one. */
export function dataBase(): string {
  const shm = '/dev/shm';
  return existsSync(shm) && isTmpfs(shm) ? path.join(shm, 'moat-bench') : path.join(CACHE_DIR, 'data');
}

export async function prepareData(bigMiB: number, owner: { uid: number; gid: number } | undefined): Promise<DataSet> {
  const base = dataBase();
  const root = path.join(base, 'root');
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const ds: DataSet = {
    root,
    tmpfs: isTmpfs(base),
    big: `big-${bigMiB}m.bin`,
    bigBytes: bigMiB * 1024 * 1024,
    bigSha1: '',
    small: 'small-64k.bin',
    smallBytes: 64 * 1024,
    listDir: 'list10k',
    listCount: 10_000,
  };
  const bigPath = path.join(root, ds.big);
  const shaPath = path.join(base, `${ds.big}.sha1`);
  if (!existsSync(bigPath) || statSync(bigPath).size !== ds.bigBytes || !existsSync(shaPath)) {
    log(`writing ${ds.big} (${bigMiB} MiB of random bytes) into ${root}`);
    writeRandomFile(bigPath, ds.bigBytes);
    writeFileSync(shaPath, await sha1File(bigPath));
  }
  ds.bigSha1 = readFileSync(shaPath, 'utf8').trim();
  const smallPath = path.join(root, ds.small);
  if (!existsSync(smallPath) || statSync(smallPath).size !== ds.smallBytes) writeRandomFile(smallPath, ds.smallBytes);
  const listPath = path.join(root, ds.listDir);
  mkdirSync(listPath, { recursive: true });
  if (readdirSync(listPath).length !== ds.listCount) {
    log(`creating ${ds.listCount} files in ${ds.listDir}/`);
    rmSync(listPath, { recursive: true, force: true });
    mkdirSync(listPath);
    const body = Buffer.alloc(100, 'x');
    for (let i = 0; i < ds.listCount; i++) writeFileSync(path.join(listPath, `file-${String(i).padStart(5, '0')}.txt`), body);
  }
  // Leftovers of an interrupted stor_1g run.
  for (const f of readdirSync(root)) if (f.startsWith('stor-')) rmSync(path.join(root, f), { force: true });
  if (owner) chownSync(root, owner.uid, owner.gid);
  return ds;
}

// ---- the system user of the C servers --------------------------------------------------------------

export const SYS_USER = 'benchftp';
export const PASSWORD = 'Bench-Pass-4711';

/** Create (or update) the local user the C servers log in, home = the served folder. */
export function ensureSysUser(home: string, crypt: 'yescrypt' | 'sha512'): { uid: number; gid: number } {
  let r = run('id', ['-u', SYS_USER]);
  if (r.code !== 0) {
    log(`useradd ${SYS_USER} (home ${home})`);
    r = run('useradd', ['-M', '-d', home, '-s', '/bin/bash', SYS_USER]);
    if (r.code !== 0) throw new Error(`useradd failed: ${tail(r.stderr, 2)}`);
  } else {
    run('usermod', ['-d', home, SYS_USER]);
  }
  r = run('chpasswd', ['-c', crypt.toUpperCase()], { input: `${SYS_USER}:${PASSWORD}\n` });
  if (r.code !== 0) throw new Error(`chpasswd failed: ${tail(r.stderr, 2)}`);
  const uid = Number(run('id', ['-u', SYS_USER]).stdout.trim());
  const gid = Number(run('id', ['-g', SYS_USER]).stdout.trim());
  return { uid, gid };
}

/** The version of a package fetched into the cache. */
export function debVersion(pkg: string): string {
  try {
    return run('dpkg-deb', ['-f', downloadDeb(pkg), 'Version']).stdout.trim() || '?';
  } catch {
    return '?';
  }
}
