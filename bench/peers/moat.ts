// Moat itself, started from the working tree exactly as a user would (node --import tsx src/cli/main.ts).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PASSWORD } from '../lib/setup.js';
import { PROJECT_DIR, run, tail } from '../lib/util.js';
import { HOST, type Ctx, type Driver, type Launch } from './types.js';

const MAIN = path.join(PROJECT_DIR, 'src', 'cli', 'main.ts');

function cli(args: string[], input?: string): ReturnType<typeof run> {
  return run(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: PROJECT_DIR, input, timeoutMs: 120_000 });
}

export const moat: Driver = {
  name: 'moat',
  async prepare(ctx: Ctx): Promise<Launch> {
    if (!existsSync(MAIN)) throw new Error('src/cli/main.ts does not exist yet');
    const users = path.join(ctx.runDir, 'users.toml');
    rmSync(users, { force: true });
    const add = cli(['user', 'add', 'bench', '--password-stdin', '--users', users, '--home', '.', '--perms', 'elradfmwMT'], `${PASSWORD}\n`);
    if (add.code !== 0) throw new Error(`moat user add failed (exit ${add.code}): ${tail(add.stderr || add.stdout, 3)}`);
    const help = cli(['serve', '--help']);
    const hasTls = /--tls-cert/.test(help.stdout + help.stderr);
    const args = [
      // The V8 flag that bin/moat.js and `npm start` give the server.
      '--max-semi-space-size=2', '--import', 'tsx', MAIN, 'serve',
      '--listen', `${HOST}:${ctx.port}`,
      '--root', ctx.ds.root,
      '--users', users,
      '--pasv-ports', `${ctx.pasvMin}-${ctx.pasvMax}`,
      '--log-level', 'warn',
    ];
    // Flags that exist in this version of the CLI: state out of the working tree, limits raised
    // for 200 clients / 10,000 idle connections from one address, TLS optional (plain scenarios too).
    const has = (flag: string): boolean => new RegExp(`(^|\\s)${flag}(?=[\\s,=<]|$)`, 'm').test(help.stdout + help.stderr);
    if (has('--state-dir')) args.push('--state-dir', path.join(ctx.runDir, 'state'));
    if (has('--max-clients')) args.push('--max-clients', '20000');
    if (has('--max-clients-per-ip')) args.push('--max-clients-per-ip', '20000');
    if (has('--idle-timeout')) args.push('--idle-timeout', '900');
    let tls: true | string = '`moat serve` has no --tls-cert option yet';
    if (hasTls && has('--tls')) {
      args.push('--tls-cert', ctx.cert.cert, '--tls-key', ctx.cert.key, '--tls', 'optional');
      tls = true;
    } else if (hasTls) tls = '`moat serve` has --tls-cert but no --tls optional: plain logins would be refused';
    // What `npm install` built decides the download path; say which one was measured.
    const sendfile = existsSync(path.join(PROJECT_DIR, 'native', 'build', 'moat.node'))
      ? 'native helper built (sendfile(2) downloads, uploads read into the file on a thread, threaded listings) unless MOAT_NATIVE=0'
      : 'no native helper (run npm install): downloads and listings on the JavaScript paths';
    let version = '?';
    try {
      version = (JSON.parse(readFileSync(path.join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      /* keep ? */
    }
    return {
      cmd: process.execPath,
      args,
      cwd: PROJECT_DIR,
      user: 'bench',
      password: PASSWORD,
      tls,
      version: `moat ${version} (working tree, tsx) on Node ${process.version}`,
      notes: ['scrypt password file, jailed LocalStorage', sendfile],
    };
  },
};
