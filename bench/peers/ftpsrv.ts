// ftp-srv from npm, installed into the cache (never into the project).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PASSWORD } from '../lib/setup.js';
import { BENCH_DIR, CACHE_DIR, log, run, tail } from '../lib/util.js';
import { HOST, type Ctx, type Driver, type Launch } from './types.js';

export const ftpsrv: Driver = {
  name: 'ftp-srv',
  async prepare(ctx: Ctx): Promise<Launch> {
    const prefix = path.join(CACHE_DIR, 'ftp-srv');
    const modules = path.join(prefix, 'node_modules');
    const pkg = path.join(modules, 'ftp-srv', 'package.json');
    if (!existsSync(pkg)) {
      mkdirSync(prefix, { recursive: true });
      log('npm install ftp-srv (into bench/.cache/ftp-srv)');
      const r = run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--omit=dev', '--ignore-scripts', '--no-save', 'ftp-srv'], { timeoutMs: 300_000 });
      if (r.code !== 0 || !existsSync(pkg)) throw new Error(`npm install ftp-srv failed: ${tail(r.stderr, 3)}`);
    }
    const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
    return {
      cmd: process.execPath,
      args: [
        path.join(BENCH_DIR, 'peers', 'ftp-srv-server.cjs'), modules, HOST, String(ctx.port), ctx.ds.root, 'bench', PASSWORD,
        String(ctx.pasvMin), String(ctx.pasvMax), ctx.cert.cert, ctx.cert.key,
      ],
      user: 'bench',
      password: PASSWORD,
      tls: true,
      version: `ftp-srv ${version} on Node ${process.version}`,
      notes: ['no MLSD command', 'FTPS limited to TLS 1.2 (its AUTH TLS fails the TLS 1.3 handshake)'],
    };
  },
};
