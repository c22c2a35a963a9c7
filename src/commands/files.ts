import { formatMdtm, parseMdtm } from '../listing/format.js';
import { hasPermission } from '../auth/types.js';
import { FtpError, reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import { statIfExists } from '../storage/errors.js';
import { ROOT } from '../storage/vpath.js';
import type { CommandSpec } from './types.js';

async function fileInfo(session: Session, arg: string) {
  const path = session.resolve(arg);
  const info = await session.storage!.stat(path);
  return { path, info };
}

export const fileCommands: CommandSpec[] = [
  {
    name: 'DELE',
    syntax: 'DELE <path>',
    help: 'Delete a file.',
    arg: 'required',
    permission: 'd',
    async handler(session, arg) {
      const path = session.resolve(arg);
      await session.storage!.delete(path);
      session.server.events.emit('delete', { ...session.actor, path, kind: 'file' });
      return reply(250, 'File deleted.');
    },
  },
  {
    name: 'RNFR',
    syntax: 'RNFR <path>',
    help: 'Name the file or directory to rename; RNTO follows.',
    arg: 'required',
    permission: 'f',
    async handler(session, arg) {
      const { path } = await fileInfo(session, arg);
      if (path === ROOT) return reply(550, 'The home folder cannot be renamed.');
      session.renameFrom = path;
      return reply(350, 'Ready for RNTO.');
    },
  },
  {
    name: 'RNTO',
    syntax: 'RNTO <path>',
    help: 'Rename the file named by RNFR.',
    arg: 'required',
    permission: 'f',
    async handler(session, arg) {
      const from = session.renameFrom;
      session.renameFrom = undefined;
      if (!from) return reply(503, 'RNFR required first.');
      const to = session.resolve(arg);
      // Renaming onto an existing entry replaces it, which deletes it: that takes `d` as well. (Checked,
      // then renamed: an entry made in between is replaced, as the same client's STOR would replace it.)
      if (to !== from && !hasPermission(session.user!, 'd') && (await statIfExists(session.storage!, to))) {
        throw new FtpError(550, 'Permission denied: the target exists, and replacing it needs the delete permission.', {
          logReason: 'missing permission d (rename onto an existing entry)',
        });
      }
      await session.storage!.rename(from, to);
      session.server.events.emit('rename', { ...session.actor, from, to });
      return reply(250, 'Rename successful.');
    },
  },
  {
    name: 'SIZE',
    syntax: 'SIZE <path>',
    help: 'Size of a file in bytes.',
    feat: 'SIZE',
    arg: 'required',
    permission: 'l',
    async handler(session, arg) {
      const { info } = await fileInfo(session, arg);
      if (info.kind !== 'file') return reply(550, 'Not a regular file.');
      return reply(213, String(info.size));
    },
  },
  {
    name: 'MDTM',
    syntax: 'MDTM <path>',
    help: 'Modification time of a file (UTC).',
    feat: 'MDTM',
    arg: 'required',
    permission: 'l',
    async handler(session, arg) {
      const { info } = await fileInfo(session, arg);
      if (info.kind !== 'file') return reply(550, 'Not a regular file.');
      return reply(213, formatMdtm(info.mtime));
    },
  },
  {
    name: 'MFMT',
    syntax: 'MFMT <YYYYMMDDHHMMSS> <path>',
    help: 'Set the modification time of a file (UTC).',
    feat: 'MFMT',
    arg: 'required',
    permission: 'T',
    async handler(session, arg) {
      const m = /^(\d{14}(?:\.\d{1,3})?) (.+)$/.exec(arg.trim());
      const when = m ? parseMdtm(m[1]!) : null;
      if (!m || !when) return reply(501, 'Syntax: MFMT YYYYMMDDHHMMSS <path>');
      if (!session.storage!.setMtime) return reply(502, 'MFMT not supported by this storage.');
      const { path, info } = await fileInfo(session, m[2]!);
      if (info.kind !== 'file') return reply(550, 'Not a regular file.');
      await session.storage!.setMtime(path, when);
      // The time the file system kept, which is not always the one asked for (ext4 stores 1901-2446).
      const kept = (await session.storage!.stat(path)).mtime;
      return reply(213, `Modify=${formatMdtm(kept)}; ${m[2]}`);
    },
  },
];
