import { hasPermission } from '../auth/types.js';
import { FtpError, reply, type Reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import { statusLines } from './listing.js';
import type { CommandSpec } from './types.js';

const MLST_FACTS = ['type', 'size', 'modify', 'perm', 'unique', 'unix.mode'];
const FACT_NAMES: Record<string, string> = { 'unix.mode': 'UNIX.mode' };

export function mlstFeature(session: Session): string {
  return 'MLST ' + MLST_FACTS.map((f) => `${FACT_NAMES[f] ?? f}${session.mlstFacts.has(f) ? '*' : ''};`).join('');
}

function feat(session: Session): Reply {
  const lines = new Set<string>();
  for (const spec of session.server.commands.specs) {
    const f = typeof spec.feat === 'function' ? spec.feat(session) : spec.feat;
    if (f) lines.add(f);
  }
  return reply(211, 'Features:', ...[...lines].sort(), 'End');
}

function help(session: Session, arg: string): Reply {
  const verb = arg.trim().toUpperCase();
  if (verb) {
    const spec = session.server.commands.get(verb);
    if (!spec) return reply(502, `Unknown command ${verb.slice(0, 8)}.`);
    return reply(214, `Syntax: ${spec.syntax} -- ${spec.help}`);
  }
  const verbs = session.server.commands.specs.flatMap((s) => [s.name, ...(s.aliases ?? [])]).sort();
  const rows: string[] = [];
  for (let i = 0; i < verbs.length; i += 8) rows.push(verbs.slice(i, i + 8).map((v) => v.padEnd(5)).join(' '));
  return reply(214, 'The following commands are recognized:', ...rows, 'Help OK.');
}

function serverStatus(session: Session): Reply {
  const lines = [
    'Moat FTP server status:',
    `Connected from ${session.remoteAddress}`,
    session.user ? `Logged in as ${session.user.name}` : 'Not logged in',
    `TYPE: ${session.transferType === 'A' ? 'ASCII' : 'BINARY'}, STRUcture: File, MODE: Stream`,
    `Control connection: ${session.secure ? 'TLS' : 'plain'}; data protection: ${session.protection === 'P' ? 'private' : 'clear'}`,
    `Data connection: ${session.dataPrepared ? 'prepared' : 'none'}`,
    'End of status',
  ];
  return reply(211, ...lines);
}

const SITE_HELP = ['SITE commands:', 'CHMOD <mode> <path>  change permission bits (octal)', 'HELP                 this text', 'End'];

async function site(session: Session, arg: string): Promise<Reply> {
  const [sub = '', ...rest] = arg.trim().split(' ');
  switch (sub.toUpperCase()) {
    case 'HELP':
      return reply(214, ...SITE_HELP);
    case 'CHMOD': {
      if (!session.user?.permissions.includes('M')) return reply(550, 'Permission denied.');
      const [mode = '', ...pathParts] = rest;
      const path = pathParts.join(' ');
      if (!/^[0-7]{1,4}$/.test(mode) || !path) return reply(501, 'Syntax: SITE CHMOD <octal mode> <path>');
      if (!session.storage!.chmod) return reply(502, 'CHMOD not supported by this storage.');
      await session.storage!.chmod(session.resolve(path), parseInt(mode, 8) & 0o777);
      return reply(200, 'SITE CHMOD command ok.');
    }
    default:
      return reply(500, 'Unknown SITE command.');
  }
}

export const miscCommands: CommandSpec[] = [
  { name: 'NOOP', syntax: 'NOOP', help: 'Do nothing.', preLogin: true, arg: 'none', handler: () => reply(200, 'NOOP ok.') },
  { name: 'SYST', syntax: 'SYST', help: 'Name the system type.', preLogin: true, arg: 'none', handler: () => reply(215, 'UNIX Type: L8') },
  { name: 'FEAT', syntax: 'FEAT', help: 'List the extensions supported.', preLogin: true, arg: 'none', handler: (s) => feat(s) },
  {
    name: 'HELP',
    syntax: 'HELP [<command>]',
    help: 'List commands, or describe one.',
    preLogin: true,
    arg: 'optional',
    handler: (s, a) => help(s, a),
  },
  {
    name: 'OPTS',
    syntax: 'OPTS UTF8 ON | OPTS MLST <facts>',
    help: 'Set options of other commands.',
    feat: 'UTF8',
    preLogin: true,
    arg: 'required',
    handler(session, arg) {
      const [name = '', ...rest] = arg.trim().split(/\s+/);
      const value = rest.join(' ');
      const option = name.toUpperCase();
      // Before login only OPTS UTF8 is answered; anything else is refused (and scored) like any other command.
      if (session.state !== 'ready' && option !== 'UTF8' && option !== 'UTF-8') {
        throw new FtpError(530, 'Please login with USER and PASS.', { logReason: 'not logged in' });
      }
      switch (option) {
        case 'UTF8':
        case 'UTF-8':
          if (value.toUpperCase() === 'ON' || value === '') return reply(200, 'Always in UTF8 mode.');
          return reply(504, 'UTF8 cannot be turned off.');
        case 'MLST': {
          if (session.state !== 'ready') return reply(530, 'Please login with USER and PASS.');
          const wanted = value.toLowerCase().split(';').filter((f) => MLST_FACTS.includes(f));
          session.mlstFacts = new Set(wanted);
          return reply(200, `MLST OPTS ${wanted.map((f) => `${FACT_NAMES[f] ?? f};`).join('')}`);
        }
        default:
          return reply(501, 'Option not understood.');
      }
    },
  },
  {
    name: 'STAT',
    syntax: 'STAT [<path>]',
    help: 'Server status, transfer progress, or a listing over the control connection.',
    duringTransfer: true,
    arg: 'optional',
    async handler(session, arg) {
      const t = session.transfer;
      if (t) return reply(213, `Status: ${t.command} ${t.path}, ${t.bytes} bytes transferred so far.`);
      if (arg.trim() === '') return serverStatus(session);
      // STAT <path> is a listing over the control connection: it takes the list permission as LIST does.
      if (!hasPermission(session.user!, 'l')) throw new FtpError(550, 'Permission denied.', { logReason: 'missing permission l' });
      const { lines, note } = await statusLines(session, arg);
      return reply(213, `Status of ${arg.trim()}:`, ...lines, `End of status${note}`);
    },
  },
  {
    name: 'SITE',
    syntax: 'SITE <subcommand> [<args>]',
    help: 'Site-specific commands; SITE HELP lists them.',
    arg: 'required',
    handler: (s, a) => site(s, a),
  },
  {
    name: 'TYPE',
    syntax: 'TYPE A | TYPE I | TYPE L 8',
    help: 'Set the representation type (ASCII or binary image).',
    arg: 'required',
    handler(session, arg) {
      const t = arg.trim().toUpperCase().replace(/\s+/g, ' ');
      if (t === 'A' || t === 'A N') {
        session.transferType = 'A';
        return reply(200, 'Switching to ASCII mode.');
      }
      if (t === 'I' || t === 'L 8') {
        session.transferType = 'I';
        return reply(200, 'Switching to Binary mode.');
      }
      if (/^(E|A [TC]|E [NTC]|L \d+)$/.test(t)) return reply(504, 'Type not supported.');
      return reply(501, 'Unrecognised TYPE.');
    },
  },
  {
    name: 'MODE',
    syntax: 'MODE S',
    help: 'Set the transfer mode; only stream mode is supported.',
    arg: 'required',
    handler(_s, arg) {
      const m = arg.trim().toUpperCase();
      if (m === 'S') return reply(200, 'Mode set to S.');
      return /^[BCZ]$/.test(m) ? reply(504, 'Mode not supported.') : reply(501, 'Unrecognised MODE.');
    },
  },
  {
    name: 'STRU',
    syntax: 'STRU F',
    help: 'Set the file structure; only file structure is supported.',
    arg: 'required',
    handler(_s, arg) {
      const m = arg.trim().toUpperCase();
      if (m === 'F') return reply(200, 'Structure set to F.');
      return /^[RP]$/.test(m) ? reply(504, 'Structure not supported.') : reply(501, 'Unrecognised STRU.');
    },
  },
  {
    name: 'ALLO',
    syntax: 'ALLO <bytes> [R <bytes>]',
    help: 'Announce the size of an upload; refused when the space is not there.',
    arg: 'required',
    async handler(session, arg) {
      const m = /^(\d{1,16})(\s+R\s+\d{1,16})?$/i.exec(arg.trim());
      if (!m) return reply(501, 'Syntax: ALLO <bytes>');
      const available = await session.storage!.available?.(session.cwd).catch(() => undefined);
      if (available !== undefined && Number(m[1]) > available) return reply(552, 'Not enough space available.');
      return reply(202, 'No storage allocation necessary.');
    },
  },
  {
    name: 'HOST',
    syntax: 'HOST <domain>',
    help: 'Name the virtual host (RFC 7151); must come before USER.',
    feat: 'HOST',
    preLogin: true,
    arg: 'required',
    handler(session, arg) {
      if (session.state !== 'need-user') return reply(503, 'HOST must come before USER.');
      if (!/^[A-Za-z0-9.:\[\]-]{1,255}$/.test(arg.trim())) return reply(501, 'Invalid host name.');
      return reply(220, 'Host accepted.');
    },
  },
  {
    name: 'CLNT',
    syntax: 'CLNT <client name>',
    help: 'Name the client software (informational).',
    preLogin: true,
    arg: 'optional',
    handler: () => reply(200, 'Noted.'),
  },
];
