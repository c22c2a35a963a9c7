import type { Writable } from 'node:stream';
import {
  formatMlsxFacts,
  lsLineFormatter,
  mlsxFormatter,
  mlsxPerm,
  mlsxPermByKind,
  parseListArgs,
} from '../listing/format.js';
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

/** One formatter per listing, so per-listing work (clock, wanted facts, perm letters) is done once. */
function lineFormatter(session: Session, format: Format, now: Date): (info: FileInfo) => string {
  switch (format) {
    case 'ls':
      return lsLineFormatter(now);
    case 'names':
      return (info) => info.name;
    case 'mlsx':
      return mlsxFormatter(mlsxPermByKind(session.user!.permissions), { facts: session.mlstFacts });
  }
}

/** Characters per write: a few large writes cost far less than one per line. */
const CHUNK_CHARS = 64 * 1024;

/** Write lines in large chunks, honouring backpressure, so a 10,000-entry folder never holds the loop. */
async function writeLines(out: Writable, lines: Iterable<string>, signal: AbortSignal, progress: (n: number) => void) {
  let text = '';
  const flush = async () => {
    const chunk = Buffer.from(text, 'utf8');
    text = '';
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
    text += line + '\r\n';
    if (text.length >= CHUNK_CHARS) await flush();
  }
  if (text) await flush();
}

/** Lines formatted as they are written, not all up front. */
function* formatted(entries: FileInfo[], format: (info: FileInfo) => string): Iterable<string> {
  for (const entry of entries) yield format(entry);
}

async function list(session: Session, command: string, arg: string, format: Format): Promise<void> {
  const parsed = format === 'mlsx' ? { flags: '', path: arg } : parseListArgs(arg);
  const showHidden = format === 'mlsx' || parsed.flags.includes('a');
  const listing = await gather(session, parsed.path.trim() === '' ? '.' : parsed.path, showHidden);
  if (format === 'mlsx' && !listing.isDir) throw new FtpError(501, 'Not a directory.');
  const toLine = lineFormatter(session, format, new Date());
  await runTransfer(session, {
    direction: 'list',
    command,
    path: listing.path,
    opening: 'Here comes the directory listing.',
    done: 'Directory send OK.',
    run: (data, signal, progress) => writeLines(data, formatted(listing.entries, toLine), signal, progress),
  });
}

/** STAT <path>: the `ls -l` listing over the control connection. */
export async function statusLines(session: Session, arg: string): Promise<string[]> {
  const parsed = parseListArgs(arg);
  const listing = await gather(session, parsed.path, parsed.flags.includes('a'));
  return listing.entries.map(lsLineFormatter(new Date()));
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
