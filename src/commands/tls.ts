import { reply, type Reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import type { TlsLayer } from '../tls/layer.js';
import { failed, isAnonymousLogin } from './auth.js';
import type { CommandSpec } from './types.js';

/** RFC 4217: PBSZ and PROT only mean something on a protected control connection. */
function needsTls(verb: string): Reply {
  return reply(503, `${verb} needs a TLS connection: send AUTH TLS first.`);
}

const TLS_REQUIRED_TEXT = 'TLS required: use AUTH TLS (or the implicit FTPS port) before logging in; your password was not read.';

/**
 * RFC 4217 (FTP over TLS): AUTH, PBSZ, PROT, CCC. Registered only when TLS is
 * configured, so FEAT lists them only then.
 */
export function tlsCommands(layer: TlsLayer): CommandSpec[] {
  const offered = () => layer.policies.offered;
  return [
    {
      name: 'AUTH',
      syntax: 'AUTH TLS',
      help: 'Start TLS on the control connection (AUTH SSL is accepted as an alias).',
      feat: () => (offered() ? 'AUTH TLS' : undefined),
      preLogin: true,
      arg: 'required',
      async handler(session, arg): Promise<Reply | void> {
        const mechanism = arg.trim().toUpperCase();
        if (!['TLS', 'SSL', 'TLS-C', 'TLS-P'].includes(mechanism)) return reply(504, 'Unsupported security mechanism; use AUTH TLS.');
        if (!offered()) return reply(534, 'TLS is disabled on this server.');
        if (session.secure) return reply(503, 'TLS is already active on this connection.');
        if (session.state === 'ready') return reply(503, 'AUTH must come before login.');
        session.send(reply(234, `AUTH ${mechanism === 'SSL' ? 'SSL' : 'TLS'} ok; proceed with the TLS handshake.`));
        await layer.upgradeControl(session);
        if (mechanism === 'TLS-P' && session.secure) {
          session.pbszSeen = true;
          session.protection = 'P';
        }
      },
    },
    {
      name: 'PBSZ',
      syntax: 'PBSZ 0',
      help: 'Protection buffer size; always 0 under TLS.',
      feat: () => (offered() ? 'PBSZ' : undefined),
      preLogin: true,
      arg: 'required',
      handler(session, arg) {
        if (!session.secure) return needsTls('PBSZ');
        if (!/^\d{1,10}$/.test(arg.trim())) return reply(501, 'PBSZ takes a number.');
        session.pbszSeen = true;
        return reply(200, 'PBSZ=0');
      },
    },
    {
      name: 'PROT',
      syntax: 'PROT C | PROT P',
      help: 'Data channel protection: C (clear) or P (private, TLS).',
      feat: () => (offered() ? 'PROT' : undefined),
      preLogin: true,
      arg: 'required',
      handler(session, arg) {
        if (!session.secure) return needsTls('PROT');
        if (!session.pbszSeen) return reply(503, 'Send PBSZ 0 before PROT.');
        const level = arg.trim().toUpperCase();
        switch (level) {
          case 'P':
          case 'C':
            session.protection = level;
            return reply(200, `Protection level set to ${level} (${level === 'P' ? 'private' : 'clear'}).`);
          case 'S':
          case 'E':
            return reply(504, `PROT ${level} is not supported; use P.`);
          default:
            return reply(501, 'Unknown protection level; use C or P.');
        }
      },
    },
    {
      name: 'CCC',
      syntax: 'CCC',
      help: 'Clear the command channel: refused (passwords and commands stay encrypted).',
      arg: 'none',
      handler(session) {
        if (!session.secure) return reply(533, 'The command channel is not protected.');
        // Never granted (RFC 4217 534): the rest of the session, PORT/PASV included, stays encrypted.
        return reply(534, 'CCC refused by policy: the control connection stays encrypted.');
      },
    },
  ];
}

/**
 * The login gate: wraps USER and PASS so that, on a clear control connection
 * where TLS is required, the password never reaches the user store (530, a
 * security event). Where the server requires TLS the login stops at USER;
 * the per-user `tls_control` override (users.lookup) lets a user through, and
 * an unknown name gets the server's policy, the same reply as a user who needs
 * TLS. Where the server does not, a user whose own override requires TLS is
 * stopped at PASS instead, as an ordinary failed login (delayed, scored, the
 * same 530 text): any other answer would tell which names exist.
 */
export function wrapLoginCommand(layer: TlsLayer, spec: CommandSpec): CommandSpec {
  if (spec.name === 'USER') {
    return {
      ...spec,
      async handler(session, arg) {
        if (!session.secure && session.state !== 'ready' && arg.trim() !== '' && layer.policies.serverControl === 'required') {
          const name = arg.trim();
          if (!(await clearLoginAllowed(layer, session, name))) {
            if (session.closed) return;
            session.pendingUser = undefined;
            session.state = 'need-user';
            session.server.events.emit('security', {
              ...session.actor,
              user: name.slice(0, 64),
              event: 'plaintext-login-refused',
              detail: 'USER on a clear control connection; TLS required',
            });
            return { ...reply(530, TLS_REQUIRED_TEXT), logged: true };
          }
        }
        return spec.handler(session, arg);
      },
    };
  }
  if (spec.name === 'PASS') {
    return {
      ...spec,
      async handler(session, arg) {
        if (!session.secure && session.state === 'need-user' && layer.policies.serverControl === 'required') {
          return reply(530, TLS_REQUIRED_TEXT);
        }
        const name = session.pendingUser;
        if (!session.secure && session.state === 'need-pass' && name && layer.policies.serverControl !== 'required') {
          if (!(await clearLoginAllowed(layer, session, name))) {
            if (session.closed) return;
            session.server.events.emit('security', {
              ...session.actor,
              user: name.slice(0, 64),
              event: 'plaintext-login-refused',
              detail: 'PASS on a clear control connection; this user needs TLS',
            });
            // The reply is the one a wrong password gets: another would tell which names exist (and need TLS).
            return failed(session, name, 'TLS required for this user');
          }
        }
        return spec.handler(session, arg);
      },
    };
  }
  return spec;
}

async function clearLoginAllowed(layer: TlsLayer, session: Session, name: string): Promise<boolean> {
  const { config, users } = session.server;
  if (isAnonymousLogin(config, name)) {
    return config.anonymous.allow_plaintext || layer.policies.serverControl !== 'required';
  }
  let user = null;
  if (users.lookup) {
    try {
      user = await users.lookup(name);
    } catch (error) {
      // The server's own policy decides then; the failure itself must not go unseen.
      session.server.events.emit('server-error', { error, where: 'users.lookup (TLS login gate)' });
      user = null;
    }
  }
  return layer.policies.control(user) !== 'required';
}
