import { ANONYMOUS_NAMES, READ_ONLY_PERMISSIONS, type User } from '../auth/types.js';
import type { MoatConfig } from '../config/schema.js';
import { reply } from '../session/reply.js';
import type { Session } from '../session/session.js';
import type { CommandSpec } from './types.js';

/** Whether `name` logs in as the anonymous user (only when anonymous access is enabled). */
export function isAnonymousLogin(config: MoatConfig, name: string): boolean {
  return config.anonymous.enabled && ANONYMOUS_NAMES.has(name.toLowerCase());
}

function anonymousUser(session: Session): User {
  return {
    name: 'anonymous',
    home: session.server.config.anonymous.home,
    permissions: READ_ONLY_PERMISSIONS,
    enabled: true,
    anonymous: true,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

async function login(session: Session, password: string): Promise<void> {
  const name = session.pendingUser!;
  const { server } = session;
  const isAnonymous = isAnonymousLogin(server.config, name);
  const user = isAnonymous
    ? anonymousUser(session)
    : await server.users.authenticate(name, password, { remoteAddress: session.remoteAddress, secure: session.secure });
  if (session.closed) return;
  if (!user) return failed(session, name, 'bad credentials');
  // A store should answer null for a disabled user; one that hands it over anyway is not trusted on that.
  if (user.enabled === false) return failed(session, name, 'user disabled');
  const verdict = server.guard.checkLogin(session.actor, user);
  if (!verdict.ok && verdict.kind === 'address') return failed(session, name, 'address not allowed for this user');
  if (!verdict.ok) {
    session.send(reply(421, verdict.text));
    return session.close('user session limit');
  }
  let storage;
  try {
    storage = await server.storageFor(user);
  } catch (error) {
    if (session.closed) return;
    // The right password and the server's own setup at fault (a missing home, or one linked out of
    // the root): not a failed login, which would be scored and banned, but an error for the operator.
    server.events.emit('server-error', { error, where: `home folder of user ${name}` });
    session.pendingUser = undefined;
    session.state = 'need-user';
    session.send(reply(530, 'Login not possible: home folder unavailable.'));
    return;
  }
  // Gone while the home was checked: logging in now would bring a closed session back to life.
  if (session.closed) return;
  session.loggedIn(user, storage);
  server.events.emit('login', { ...session.actor, secure: session.secure });
  session.send(reply(230, 'Login successful.'));
}

/**
 * A failed login answers only after a delay that doubles with each failure on
 * this connection, then closes the connection after the configured count.
 * `text` is what the client is told (the TLS gate says why).
 */
export async function failed(session: Session, name: string, reason: string, text = 'Login incorrect.'): Promise<void> {
  const { server } = session;
  session.failedLogins++;
  session.pendingUser = undefined;
  session.state = 'need-user';
  server.events.emit('login-failed', { ...session.actor, user: name, reason });
  const base = server.config.guard.failed_login_delay_ms;
  await sleep(Math.min(base * 2 ** (session.failedLogins - 1), 30_000));
  if (session.closed) return;
  session.send(reply(530, text));
  if (session.failedLogins >= server.config.limits.max_login_attempts) {
    server.events.emit('security', { ...session.actor, user: name, event: 'too-many-failed-logins' });
    session.send(reply(421, 'Too many failed logins; closing.'));
    session.close('too many failed logins');
  }
}

export const authCommands: CommandSpec[] = [
  {
    name: 'USER',
    syntax: 'USER <name>',
    help: 'Start a login as <name>.',
    preLogin: true,
    arg: 'required',
    handler(session, arg) {
      if (session.state === 'ready') return reply(530, "Can't change to another user; use REIN first.");
      session.pendingUser = arg.trim();
      session.state = 'need-pass';
      const anonymous = isAnonymousLogin(session.server.config, session.pendingUser);
      return reply(331, anonymous ? 'Anonymous login ok, send your e-mail address as password.' : 'Please specify the password.');
    },
  },
  {
    name: 'PASS',
    syntax: 'PASS <password>',
    help: 'Finish the login with the password.',
    preLogin: true,
    arg: 'optional',
    async handler(session, arg) {
      if (session.state === 'ready') return reply(230, 'Already logged in.');
      if (session.state !== 'need-pass' || !session.pendingUser) return reply(503, 'Login with USER first.');
      await login(session, arg);
    },
  },
  {
    name: 'ACCT',
    syntax: 'ACCT <account>',
    help: 'Accepted for compatibility; accounts are not used.',
    arg: 'required',
    handler() {
      return reply(202, 'ACCT not needed.');
    },
  },
  {
    name: 'REIN',
    syntax: 'REIN',
    help: 'Log out and start over on the same connection.',
    arg: 'none',
    handler(session) {
      if (session.user) session.server.events.emit('logout', session.actor);
      session.reinitialize();
      return reply(220, session.server.config.banner);
    },
  },
  {
    name: 'QUIT',
    syntax: 'QUIT',
    help: 'End the session (after the transfer in progress, if any).',
    preLogin: true,
    duringTransfer: true,
    arg: 'none',
    async handler(session) {
      // RFC 959: a transfer in progress finishes and gets its reply first (the stall watchdog bounds the
      // wait). One still waiting for its data connection is given up: the client is leaving, not connecting.
      session.abandonWaitingTransfer('quit');
      await session.transferFinished();
      // The client may have gone while the transfer wound down.
      if (session.closed) return;
      if (session.user) session.server.events.emit('logout', session.actor);
      session.send(reply(221, 'Goodbye.'));
      session.close('quit', 'close');
    },
  },
];
