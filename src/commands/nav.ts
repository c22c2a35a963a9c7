import { reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import type { VirtualPath } from '../storage/types.js';
import { parent } from '../storage/vpath.js';
import { quotePath } from './quote.js';
import type { CommandSpec } from './types.js';

async function changeDir(session: Session, target: VirtualPath) {
  const info = await session.storage!.stat(target);
  if (info.kind !== 'dir') return reply(550, 'Not a directory.');
  session.cwd = target;
  return reply(250, 'Directory successfully changed.');
}

export const navCommands: CommandSpec[] = [
  {
    name: 'PWD',
    aliases: ['XPWD'],
    syntax: 'PWD',
    help: 'Print the current directory.',
    arg: 'none',
    handler: (s) => reply(257, `${quotePath(s.cwd)} is the current directory.`),
  },
  {
    name: 'CWD',
    aliases: ['XCWD'],
    syntax: 'CWD <path>',
    help: 'Change the current directory.',
    feat: 'TVFS',
    arg: 'required',
    permission: 'e',
    handler: (s, a) => changeDir(s, s.resolve(a)),
  },
  {
    name: 'CDUP',
    aliases: ['XCUP'],
    syntax: 'CDUP',
    help: 'Change to the parent directory.',
    arg: 'none',
    permission: 'e',
    handler: (s) => changeDir(s, parent(s.cwd)),
  },
  {
    name: 'MKD',
    aliases: ['XMKD'],
    syntax: 'MKD <path>',
    help: 'Make a directory.',
    arg: 'required',
    permission: 'm',
    async handler(session, arg) {
      const path = session.resolve(arg);
      await session.storage!.mkdir(path);
      session.server.events.emit('mkdir', { ...session.actor, path });
      return reply(257, `${quotePath(path)} created.`);
    },
  },
  {
    name: 'RMD',
    aliases: ['XRMD'],
    syntax: 'RMD <path>',
    help: 'Remove an empty directory.',
    arg: 'required',
    permission: 'd',
    async handler(session, arg) {
      const path = session.resolve(arg);
      await session.storage!.rmdir(path);
      session.server.events.emit('delete', { ...session.actor, path, kind: 'dir' });
      return reply(250, 'Directory removed.');
    },
  },
];
