import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FromNetworkAscii, ToNetworkAscii } from '../data/ascii.js';
import { copy } from '../data/copy.js';
import { receive } from '../data/receive.js';
import { FtpError, reply, type Reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import { runTransfer } from '../session/transfer.js';
import { overUploadLimit, statIfExists } from '../storage/errors.js';
import { StorageError, type VirtualPath } from '../storage/types.js';
import { basename, join, parent } from '../storage/vpath.js';
import type { CommandSpec } from './types.js';

function modeName(session: Session): string {
  return session.transferType === 'A' ? 'ASCII' : 'BINARY';
}

/** Counts bytes as they pass, without copying them. */
function counted(stream: Readable, progress: (n: number) => void): Readable {
  stream.on('data', (chunk: Buffer) => progress(chunk.length));
  return stream;
}

function pastEnd(): StorageError {
  return new StorageError('past-end', 'REST beyond end of file');
}

async function retrieve(session: Session, arg: string): Promise<Reply | void> {
  const path = session.resolve(arg);
  const start = session.restOffset;
  const { size, stream: source } = await session.storage!.read(path, { start });
  if (start > size) {
    source.destroy();
    throw pastEnd();
  }
  await runTransfer(session, {
    direction: 'download',
    command: 'RETR',
    path,
    opening: `Opening ${modeName(session)} mode data connection for ${basename(path)} (${size - start} bytes).`,
    async run(data, signal, progress) {
      let sent = 0;
      const counting = (n: number): void => {
        sent += n;
        progress(n);
      };
      if (session.transferType === 'A') await pipeline(counted(source, counting), new ToNetworkAscii(), data, { signal });
      else await copy(source, data, signal, counting);
      // Stream mode has no end-of-file marker but the close: a file cut short while it was being
      // sent would look complete to the client. We announced its size, so we can tell.
      if (sent < size - start) throw new FtpError(451, 'File shrank during the transfer; the data sent is incomplete.', { logReason: 'file shrank during the download' });
    },
    async cleanup() {
      source.destroy();
    },
  });
}

interface StoreOptions {
  command: 'STOR' | 'APPE' | 'STOU';
  append?: boolean;
  /** STOU: the name chosen for the client, announced in the 150 and 226 replies. */
  unique?: boolean;
}

async function store(session: Session, path: VirtualPath, options: StoreOptions): Promise<Reply | void> {
  const storage = session.storage!;
  const offset = options.append ? 0 : session.restOffset;
  const existing = await statIfExists(storage, path);
  if (existing && existing.kind !== 'file') return reply(550, 'Not a regular file.');
  if (offset > (existing?.size ?? 0)) throw pastEnd();
  session.data.requireReady();
  const upload = await storage.write(path, { offset, append: options.append === true, exclusive: options.unique === true });
  const maxSize = session.server.config.limits.max_upload_size;
  let committed = false;
  const name = basename(path);
  await runTransfer(session, {
    direction: 'upload',
    command: options.command,
    path,
    opening: options.unique ? `FILE: ${name}` : `Ok to send data for ${name}.`,
    done: options.unique ? `Transfer complete (unique file name: ${name}).` : undefined,
    async run(data, signal, progress) {
      // The limit is on the file an upload leaves: what it resumes from or appends to counts.
      let total = options.append ? (existing?.size ?? 0) : offset;
      const grew = (n: number): void => {
        total += n;
        if (maxSize > 0 && total > maxSize) {
          data.destroy(overUploadLimit());
        }
      };
      const received = (n: number): void => {
        progress(n);
        grew(n);
      };
      if (session.transferType === 'A') {
        // In ASCII the file gets fewer bytes than the wire carries (CRLF -> LF): the limit counts the file's.
        const toFile = new FromNetworkAscii();
        toFile.on('data', (chunk: Buffer) => grew(chunk.length));
        await pipeline(counted(data, progress), toFile, upload.stream, { signal });
      } else {
        await receive(data, upload.stream, signal, received, maxSize > 0 ? maxSize - total : Infinity);
        upload.stream.end();
      }
      await upload.commit();
      committed = true;
    },
    async cleanup() {
      if (!committed) await upload.abort();
    },
  });
}

async function uniqueName(session: Session, base: string): Promise<VirtualPath> {
  // A folder in the hint is kept ("STOU sub/report" lands in sub/), as vsftpd does.
  const hinted = base.trim() ? session.resolve(base) : undefined;
  const folder = hinted ? parent(hinted) : session.cwd;
  const stem = hinted ? basename(hinted) : 'file';
  for (let i = 0; i < 16; i++) {
    const candidate = join(folder, `${stem}.${randomBytes(4).toString('hex')}`);
    if (!(await statIfExists(session.storage!, candidate))) return candidate;
  }
  throw new StorageError('exists', 'no unique name found');
}

export const transferCommands: CommandSpec[] = [
  {
    name: 'RETR',
    syntax: 'RETR <path>',
    help: 'Download a file (from the REST offset, if one was given).',
    usesRest: true,
    arg: 'required',
    permission: 'r',
    handler: (s, a) => retrieve(s, a),
  },
  {
    name: 'STOR',
    syntax: 'STOR <path>',
    help: 'Upload a file; it appears under its name only once complete (REST resumes in place).',
    usesRest: true,
    arg: 'required',
    permission: 'w',
    handler: (s, a) => store(s, s.resolve(a), { command: 'STOR' }),
  },
  {
    name: 'APPE',
    syntax: 'APPE <path>',
    help: 'Append to a file, creating it if needed.',
    usesRest: true,
    arg: 'required',
    permission: 'a',
    handler: (s, a) => store(s, s.resolve(a), { command: 'APPE', append: true }),
  },
  {
    name: 'STOU',
    syntax: 'STOU [<name>]',
    help: 'Upload under a unique name chosen by the server.',
    usesRest: true,
    arg: 'optional',
    permission: 'w',
    async handler(session, arg) {
      if (session.restOffset > 0) return reply(503, 'REST is not allowed with STOU.');
      return store(session, await uniqueName(session, arg), { command: 'STOU', unique: true });
    },
  },
  {
    name: 'REST',
    syntax: 'REST <offset>',
    help: 'Set the byte offset for the next RETR or STOR.',
    feat: 'REST STREAM',
    arg: 'required',
    handler(session, arg) {
      const t = arg.trim();
      if (!/^\d{1,16}$/.test(t) || !Number.isSafeInteger(Number(t))) return reply(501, 'REST needs a byte offset.');
      session.restOffset = Number(t);
      return reply(350, `Restarting at ${t}. Send STOR or RETR to start the transfer.`);
    },
  },
  {
    name: 'ABOR',
    syntax: 'ABOR',
    help: 'Abort the transfer in progress.',
    duringTransfer: true,
    arg: 'none',
    async handler(session) {
      if (await session.abortTransfer()) return reply(226, 'ABOR successful.');
      session.dropDataSetup();
      return reply(225, 'No transfer to abort.');
    },
  },
];
