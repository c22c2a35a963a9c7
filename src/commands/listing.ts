import type { Writable } from 'node:stream';
import { formatLsLine, formatMlsxFacts, mlsxPerm, parseListArgs } from '../listing/format.js';
import { FtpError, reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import { runTransfer } from '../session/transfer.js';
import type { FileInfo, VirtualPath } from '../storage/types.js';
import { basename } from '../storage/vpath.js';
import type { CommandSpec } from './types.js';
import { mlstFeature } from './misc.js';

type Format = 'ls' | 'names' | 'mlsx';

interface Listing {
  path: VirtualPath;
  /** The directory's entries, or the one file that was named. */
  entries: FileInfo[];
  isDir: boolean;
}

async function gather(session: Session, pathArg: string, showHidden: boolean): Promise<Listing> {
  const path = session.resolve(pathArg);
  const storage = session.storage!;
  const info = await storage.stat(path);
  if (info.kind !== 'dir') return { path, entries: [{ ...info, name: basename(path) }], isDir: false };
  const limits = session.server.config.limits;
  const started = Date.now();
  const entries = await storage.list(path, { limit: limits.listing_max_entries });
  if (Date.now() - started > limits.listing_timeout * 1000) {
    throw new FtpError(451, 'Listing took too long.', { logReason: 'listing timeout' });
  }
  const shown = showHidden ? entries : entries.filter((e) => !e.name.startsWith('.'));
  shown.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { path, entries: shown, isDir: true };
}

function formatLine(session: Session, format: Format, info: FileInfo, now: Date): string {
  switch (format) {
    case 'ls':
      return formatLsLine(info, now);
    case 'names':
      return info.name;
    case 'mlsx':
      return formatMlsxFacts(info, mlsxPerm(info, session.user!.permissions), { facts: session.mlstFacts });
  }
}

/** Write lines in batches, honouring backpressure, so a 10,000-entry folder never holds the loop. */
async function writeLines(out: Writable, lines: Iterable<string>, signal: AbortSignal, progress: (n: number) => void) {
  let batch: string[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const chunk = Buffer.from(batch.join('\r\n') + '\r\n', 'utf8');
    batch = [];
    progress(chunk.length);
    if (!out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason ?? new Error('aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
        out.once('drain', () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  };
  for (const line of lines) {
    if (signal.aborted) throw signal.reason ?? new Error('aborted');
    batch.push(line);
    if (batch.length >= 256) await flush();
  }
  await flush();
}

async function list(session: Session, command: string, arg: string, format: Format): Promise<void> {
  const parsed = format === 'mlsx' ? { flags: '', path: arg } : parseListArgs(arg);
  const showHidden = format === 'mlsx' || parsed.flags.includes('a');
  const listing = await gather(session, parsed.path.trim() === '' ? '.' : parsed.path, showHidden);
  if (format === 'mlsx' && !listing.isDir) throw new FtpError(501, 'Not a directory.');
  const now = new Date();
  await runTransfer(session, {
    direction: 'list',
    command,
    path: listing.path,
    opening: 'Here comes the directory listing.',
    done: 'Directory send OK.',
    run: (data, signal, progress) =>
      writeLines(data, listing.entries.map((e) => formatLine(session, format, e, now)), signal, progress),
  });
}

/** STAT <path>: the `ls -l` listing over the control connection. */
export async function statusLines(session: Session, arg: string): Promise<string[]> {
  const parsed = parseListArgs(arg);
  const listing = await gather(session, parsed.path, parsed.flags.includes('a'));
  const now = new Date();
  return listing.entries.map((e) => formatLsLine(e, now));
}

export const listingCommands: CommandSpec[] = [
  {
    name: 'LIST',
    syntax: 'LIST [-al] [<path>]',
    help: 'List a directory in `ls -l` form over the data connection.',
    arg: 'optional',
    permission: 'l',
    handler: (s, a) => list(s, 'LIST', a, 'ls'),
  },
  {
    name: 'NLST',
    syntax: 'NLST [-a] [<path>]',
    help: 'List names only over the data connection.',
    arg: 'optional',
    permission: 'l',
    handler: (s, a) => list(s, 'NLST', a, 'names'),
  },
  {
    name: 'MLSD',
    syntax: 'MLSD [<path>]',
    help: 'List a directory with machine-readable facts (RFC 3659).',
    arg: 'optional',
    permission: 'l',
    handler: (s, a) => list(s, 'MLSD', a, 'mlsx'),
  },
  {
    name: 'MLST',
    syntax: 'MLST [<path>]',
    help: 'Facts of one file or directory over the control connection.',
    feat: mlstFeature,
    arg: 'optional',
    permission: 'l',
    async handler(session, arg) {
      const path = session.resolve(arg.trim() === '' ? '.' : arg);
      const info = await session.storage!.stat(path);
      const facts = formatMlsxFacts({ ...info, name: path }, mlsxPerm(info, session.user!.permissions), {
        facts: session.mlstFacts,
      });
      return reply(250, `Listing ${path}`, facts, 'End');
    },
  },
];
