import { lookup } from 'node:dns/promises';
import { isIP, isIPv4 } from 'node:net';
import { ipFamily, isByte, normalizeIp, parseDottedIPv4, sameHost } from '../data/address.js';
import { PassiveUnavailable } from '../data/passive.js';
import { FtpError, reply, type Reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import type { CommandSpec } from './types.js';

function requirePassive(session: Session): void {
  if (!session.server.config.passive.enabled) throw new FtpError(502, 'Passive mode is disabled on this server.');
}

async function openPassive(session: Session): Promise<number> {
  requirePassive(session);
  try {
    return await session.data.preparePassive(session.localAddress);
  } catch (error) {
    if (error instanceof PassiveUnavailable) {
      session.server.events.emit('security', { ...session.actor, event: 'passive-unavailable', detail: error.message });
      throw new FtpError(425, "Can't open passive connection: no port available.", { cause: error, logged: true });
    }
    throw error;
  }
}

/** The IPv4 address announced in a 227 reply: configured public host (NAT) or our local address. */
async function announcedIPv4(session: Session): Promise<string> {
  const configured = session.listener.publicHost || session.server.config.passive.public_host;
  if (!configured) {
    if (isIPv4(session.localAddress)) return session.localAddress;
    throw new FtpError(425, 'PASV needs IPv4; use EPSV.', { logReason: 'PASV on an IPv6 connection' });
  }
  if (isIPv4(configured)) return configured;
  try {
    return (await lookup(configured, { family: 4 })).address;
  } catch (error) {
    // The server's setup, not the client, is at fault: worth a line the operator sees.
    session.server.events.emit('server-error', { error, where: `PASV: public host ${configured} has no IPv4 address` });
    throw new FtpError(425, "Can't announce the passive address; use EPSV.", { cause: error, logReason: `public host ${configured} unresolved` });
  }
}

function refuseIfEpsvAll(session: Session): void {
  if (session.epsvAll) throw new FtpError(503, 'EPSV ALL in effect; only EPSV is allowed.');
}

/**
 * A PORT/EPRT target must be the client's own address on a port >= 1024 unless
 * configured otherwise: anything else is the FTP bounce attack (RFC 2577).
 */
function activeTarget(session: Session, host: string, port: number): Reply {
  const { active } = session.server.config;
  if (!active.enabled) return reply(502, 'Active mode is disabled on this server.');
  if (port < 1 || port > 65535) return reply(501, 'Invalid port.');
  // The client's own address is of the other family: not a bounce, a mismatch (RFC 2428's 522 names the one to use).
  const family = ipFamily(session.remoteAddress);
  if (!active.allow_foreign_hosts && ipFamily(host) !== family) return reply(522, `Network protocol not supported, use (${family === 4 ? 1 : 2})`);
  const foreign = !sameHost(host, session.remoteAddress);
  const low = port < 1024;
  if ((foreign && !active.allow_foreign_hosts) || (low && !active.allow_low_ports)) {
    session.server.events.emit('security', {
      ...session.actor,
      event: 'bounce-attempt',
      detail: `${foreign ? 'foreign host' : 'low port'} ${normalizeIp(host)}:${port}`,
    });
    return { ...reply(504, foreign ? 'Data connections only to your own address.' : 'Data connections only to ports >= 1024.'), logged: true };
  }
  session.data.setActive(normalizeIp(host), port);
  return reply(200, 'Command okay.');
}

export const dataConnCommands: CommandSpec[] = [
  {
    name: 'PASV',
    syntax: 'PASV',
    help: 'Open a passive data port (IPv4).',
    arg: 'none',
    async handler(session) {
      refuseIfEpsvAll(session);
      const address = await announcedIPv4(session);
      const port = await openPassive(session);
      const h = address.split('.').join(',');
      return reply(227, `Entering Passive Mode (${h},${port >> 8},${port & 255}).`);
    },
  },
  {
    name: 'EPSV',
    syntax: 'EPSV [1|2|ALL]',
    help: 'Open a passive data port (RFC 2428).',
    // Not advertised when it would be refused (RFC 2389: FEAT lists what the server does).
    feat: (s) => (s.server.config.passive.enabled ? 'EPSV' : undefined),
    arg: 'optional',
    async handler(session, arg) {
      const a = arg.trim().toUpperCase();
      // EPSV ALL would leave a session with passive off no way to open a data connection.
      requirePassive(session);
      if (a === 'ALL') {
        session.epsvAll = true;
        return reply(200, 'EPSV ALL ok.');
      }
      if (a !== '') {
        if (a !== '1' && a !== '2') return reply(501, 'Unknown network protocol.');
        // RFC 2428 numbers the protocols 1 (IPv4) and 2 (IPv6).
        const proto = ipFamily(session.localAddress) === 4 ? '1' : '2';
        if (a !== proto) return reply(522, `Network protocol not supported, use (${proto})`);
      }
      const port = await openPassive(session);
      return reply(229, `Entering Extended Passive Mode (|||${port}|)`);
    },
  },
  {
    name: 'PORT',
    syntax: 'PORT h1,h2,h3,h4,p1,p2',
    help: 'Name the active-mode data port (IPv4).',
    arg: 'required',
    handler(session, arg) {
      refuseIfEpsvAll(session);
      const parts = arg.trim().split(',');
      if (parts.length !== 6 || !parts.every(isByte)) {
        return reply(501, 'Syntax: PORT h1,h2,h3,h4,p1,p2');
      }
      const n = parts.map(Number);
      return activeTarget(session, n.slice(0, 4).join('.'), n[4]! * 256 + n[5]!);
    },
  },
  {
    name: 'EPRT',
    syntax: 'EPRT |<af>|<address>|<port>|',
    help: 'Name the active-mode data port (RFC 2428, IPv4 or IPv6).',
    feat: (s) => (s.server.config.active.enabled ? 'EPRT' : undefined),
    arg: 'required',
    handler(session, arg) {
      refuseIfEpsvAll(session);
      const t = arg.trim();
      const d = t[0];
      if (!d || d.charCodeAt(0) < 33 || d.charCodeAt(0) > 126) return reply(501, 'Syntax: EPRT |af|address|port|');
      const parts = t.split(d);
      if (parts.length !== 5 || parts[0] !== '' || parts[4] !== '') return reply(501, 'Syntax: EPRT |af|address|port|');
      const [, af, host = '', port = ''] = parts;
      if (af !== '1' && af !== '2') return reply(522, 'Network protocol not supported, use (1,2)');
      const address = af === '1' ? parseDottedIPv4(host) : isIP(host) === 6 ? host : undefined;
      if (!address || !/^\d{1,5}$/.test(port)) return reply(501, 'Invalid EPRT address or port.');
      return activeTarget(session, address, Number(port));
    },
  },
];
