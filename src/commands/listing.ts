import { Readable } from 'node:stream';
import { copy } from '../data/copy.js';
import {
  formatMlsxFacts,
  lsLineFormatter,
  mlsxFormatter,
  mlsxPerm,
  mlsxPermByKind,
  parseListArgs,
  safeName,
} from '../listing/format.js';
import { FtpError, reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import { nativeLines } from '../listing/native-lines.js';
import { runTransfer } from '../session/transfer.js';
import { entryAt, fileInfo, tableLength } from '../storage/entry-table.js';
import { tableHead } from '../storage/native-list.js';
import type { EntryTable, FileInfo, TableListing, VirtualPath } from '../storage/types.js';
import { basename, ROOT } from '../storage/vpath.js';
import type { CommandSpec } from './types.js';
import { mlstFeature } from './misc.js';

type Format = 'ls' | 'names' | 'mlsx';

interface Listing {
  path: VirtualPath;
  /**
   * The directory's entries in order, or the one file that was named. From a
   * packed table the same object is yielded for every entry, refilled: read
   * each one before taking the next.
   */
  entries: Iterable<FileInfo>;
  /** The packed table the entries come from, when the storage gave one. */
  table?: EntryTable;
  showHidden: boolean;
  isDir: boolean;
  /** Set when the folder held at least limits.listing_max_entries entries: only that many were read. */
  truncatedTo?: number;
}

/** Sessions whose storage is still reading a folder for them. */
const stillListing = new WeakSet<Session>();

async function gather(session: Session, pathArg: string, showHidden: boolean): Promise<Listing> {
  const path = session.resolve(pathArg);
  const storage = session.storage!;
  const limits = session.server.config.limits;
  const limit = limits.listing_max_entries;
  // One entry past the limit is read to tell a folder that holds exactly `limit` entries from one that was cut.
  const options = { limit: limit + 1 };
  const listTable = (storage as Partial<TableListing>).listTable?.bind(storage);
  // A listing past its deadline still runs in the storage: one per session, so a client cannot pile them up.
  if (stillListing.has(session)) throw new FtpError(451, 'The previous listing is still being read; try again later.', { logReason: 'listing still running' });
  stillListing.add(session);
  // The stat is under the deadline too: on a hung file system it hangs as the folder read would.
  const work = (async (): Promise<EntryTable | FileInfo[] | FileInfo> => {
    const info = await storage.stat(path);
    if (info.kind !== 'dir') return info;
    return listTable ? listTable(path, options) : storage.list(path, options);
  })().finally(() => stillListing.delete(session));
  const listed = await withinDeadline(work, limits.listing_timeout * 1000);
  if (!Array.isArray(listed) && !isTable(listed)) return { path, entries: [{ ...listed, name: basename(path) }], showHidden, isDir: false };
  const count = Array.isArray(listed) ? listed.length : tableLength(listed);
  const truncatedTo = count > limit ? limit : undefined;
  if (truncatedTo) session.server.events.emit('security', { ...session.actor, event: 'listing-truncated', detail: `${path}: first ${truncatedTo} entries read` });
  if (!Array.isArray(listed)) {
    const table = tableHead(listed, limit);
    return { path, entries: tableRows(table, showHidden), table, showHidden, isDir: true, truncatedTo };
  }
  listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const read = listed.slice(0, limit);
  const shown = showHidden ? read : read.filter((e) => !e.name.startsWith('.'));
  return { path, entries: shown, showHidden, isDir: true, truncatedTo };
}

function isTable(listed: EntryTable | FileInfo): listed is EntryTable {
  return 'nums' in listed;
}

/** Said after a listing that was cut, so a mirroring client (or its user) can tell. */
function truncationNote(listing: Listing): string {
  return listing.truncatedTo ? `; output truncated to ${listing.truncatedTo} entries (listing limit)` : '';
}

/**
 * The listing, or 451 once `ms` have passed (0 = no limit): a folder on a hung
 * or very slow filesystem answers the client instead of holding it. The
 * storage's work cannot be recalled; its late result is dropped.
 */
async function withinDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  if (ms <= 0) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FtpError(451, 'Listing took too long.', { logReason: 'listing timeout' })), ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A packed table's entries (sorted already), as one FileInfo refilled for each. */
function* tableRows(t: EntryTable, showHidden: boolean): Generator<FileInfo> {
  const row = fileInfo('', 'file', 0, 0, 0, 0, '');
  for (let i = 0, n = tableLength(t); i < n; i++) {
    if (!showHidden && t.names[i]!.startsWith('.')) continue;
    if (entryAt(t, i, row)) yield row;
  }
}

/** One formatter per listing, so per-listing work (clock, wanted facts, perm letters) is done once. */
function lineFormatter(session: Session, format: Format, now: Date): (info: FileInfo) => string {
  switch (format) {
    case 'ls':
      return lsLineFormatter(now);
    case 'names':
      return (info) => safeName(info.name);
    case 'mlsx':
      return mlsxFormatter(mlsxPermByKind(session.user!.permissions), { facts: session.mlstFacts });
  }
}

/** Characters per write: a few large writes cost far less than one per line. */
const CHUNK_CHARS = 64 * 1024;

/**
 * The listing's lines, formatted as they are sent (not all up front) and
 * joined into large chunks; `copy` then writes them with backpressure, ends on
 * an abort, and fails at once if the client drops the data connection.
 */
function* chunks(entries: Iterable<FileInfo>, format: (info: FileInfo) => string): Generator<Buffer> {
  let text = '';
  for (const entry of entries) {
    text += format(entry) + '\r\n';
    if (text.length >= CHUNK_CHARS) {
      yield Buffer.from(text, 'utf8');
      text = '';
    }
  }
  if (text) yield Buffer.from(text, 'utf8');
}

async function list(session: Session, command: string, arg: string, format: Format): Promise<void> {
  const parsed = format === 'mlsx' ? { flags: '', path: arg } : parseListArgs(arg);
  const showHidden = format === 'mlsx' || parsed.flags.includes('a');
  const listing = await gather(session, parsed.path.trim() === '' ? '.' : parsed.path, showHidden);
  if (format === 'mlsx' && !listing.isDir) throw new FtpError(501, 'Not a directory.');
  const now = new Date();
  const native =
    listing.table &&
    nativeLines(listing.table, { format, now, showHidden: listing.showHidden, facts: session.mlstFacts, permissions: session.user!.permissions });
  const lines = native ?? chunks(listing.entries, lineFormatter(session, format, now));
  await runTransfer(session, {
    direction: 'list',
    command,
    path: listing.path,
    opening: 'Here comes the directory listing.',
    done: `Directory send OK${truncationNote(listing)}.`,
    run: (data, signal, progress) => copy(Readable.from(lines), data, signal, progress),
  });
}

/** STAT <path>: the `ls -l` listing over the control connection. */
export async function statusLines(session: Session, arg: string): Promise<{ lines: string[]; note: string }> {
  const parsed = parseListArgs(arg);
  const listing = await gather(session, parsed.path, parsed.flags.includes('a'));
  return { lines: Array.from(listing.entries, lsLineFormatter(new Date())), note: truncationNote(listing) };
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
      // The home itself cannot be deleted or renamed (RMD /, RNFR / are refused).
      const perm = mlsxPerm(info, session.user!.permissions);
      const facts = formatMlsxFacts({ ...info, name: path }, path === ROOT ? perm.replace(/[df]/g, '') : perm, {
        facts: session.mlstFacts,
      });
      return reply(250, `Listing ${path}`, facts, 'End');
    },
  },
];
