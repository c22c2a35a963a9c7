import { createConnection } from 'node:net';
import type { Command } from 'commander';
import { controlSocketOf } from '../server/control-socket.js';
import type { SessionSummary } from '../server/who.js';
import { stateDirOf } from './state-dir.js';
import { CliError } from './user.js';

interface WhoFlags {
  config?: string;
  stateDir?: string;
  json?: boolean;
}

const ASK_TIMEOUT_MS = 5000;

/** Sends one request line to the running server's control socket; resolves to its JSON answer. */
function ask(path: string, request: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let answer = '';
    socket.setEncoding('utf8');
    socket.setTimeout(ASK_TIMEOUT_MS, () => socket.destroy(new Error(`no answer within ${ASK_TIMEOUT_MS / 1000} s`)));
    socket.on('connect', () => socket.write(`${request}\n`));
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => {
      try {
        resolve(JSON.parse(answer));
      } catch {
        reject(new Error('unreadable answer'));
      }
    });
    socket.on('error', reject);
  });
}

function duration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

function doing(s: SessionSummary): string {
  const t = s.transfer;
  if (!t) return s.user ? 'idle' : 'logging in';
  const rate = t.seconds > 0 ? `, ${size(t.bytes / t.seconds)}/s` : '';
  return `${t.command} ${t.path} (${size(t.bytes)}${rate})`;
}

/** A table like pure-ftpwho's: one line per session, columns aligned. */
function formatWho(sessions: SessionSummary[], now = Date.now()): string {
  if (sessions.length === 0) return 'no sessions\n';
  const rows = [
    ['SESSION', 'USER', 'FROM', 'TLS', 'FOR', 'IDLE', 'DOING'],
    ...sessions.map((s) => [
      s.id,
      s.user ?? '-',
      s.ip.includes(':') ? `[${s.ip}]:${s.port}` : `${s.ip}:${s.port}`,
      s.tls ? 'yes' : 'no',
      duration((now - Date.parse(s.connectedAt)) / 1000),
      duration(s.idleSeconds),
      doing(s),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function registerWhoCommand(program: Command): void {
  program
    .command('who')
    .description("list the running server's sessions: user, address, TLS, idle time, transfer in progress")
    .option('-c, --config <file>', 'configuration file, for its state_dir')
    .option('--state-dir <dir>', 'state folder of the running server (default: from the configuration, ./.moat)')
    .option('--json', 'print JSON')
    .action(async (flags: WhoFlags) => {
      const path = controlSocketOf(await stateDirOf(flags));
      let answer: { sessions?: SessionSummary[]; error?: string };
      try {
        answer = (await ask(path, 'who')) as typeof answer;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ECONNREFUSED') throw new CliError(`no running server on this state folder (${path} ${code === 'ENOENT' ? 'does not exist' : 'refuses connections'})`);
        throw new CliError(`${path}: ${(error as Error).message}`);
      }
      if (!Array.isArray(answer.sessions)) throw new CliError(`${path}: ${answer.error ?? 'unexpected answer'}`);
      process.stdout.write(flags.json ? JSON.stringify(answer.sessions, null, 2) + '\n' : formatWho(answer.sessions));
    });
}
