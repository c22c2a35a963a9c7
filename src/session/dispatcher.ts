import { hasPermission } from '../auth/types.js';
import { SECURITY_VERBS, UNIMPLEMENTED_VERBS } from '../commands/table.js';
import { StorageError } from '../storage/types.js';
import { toFtpError } from './errors.js';
import { reply, type Reply } from './reply.js';
import type { Session } from './session.js';

/** A command line's verb, upper-cased, as the dispatcher reads it (the session's queue asks the same). */
export function verbOf(line: string): string {
  const space = line.indexOf(' ');
  return (space < 0 ? line : line.slice(0, space)).trim().toUpperCase();
}

/**
 * Runs one command line through the checks in one fixed order: parse, rate
 * limit (guard), lookup, state, argument shape, permission, handler. Every failure becomes a reply
 * here, with one 'refused' event, whether the handler threw it or returned a 4xx/5xx reply.
 */
export async function dispatch(session: Session, line: string, utf8 = true): Promise<void> {
  const space = line.indexOf(' ');
  const verb = verbOf(line);
  const arg = space < 0 ? '' : line.slice(space + 1);
  // A line whose verb is not one (3-4 letters, or an extension verb we know) is logged as '?': it may
  // be a password sent on a line of its own, or glued to PASS without the space.
  const logged = /^[A-Z]{3,4}$/.test(verb) || UNIMPLEMENTED_VERBS.has(verb) ? verb : '?';
  let usesRest = false;
  const refuse = (code: number, text: string, reason: string, alreadyLogged = false): void => {
    if (usesRest) session.restOffset = 0;
    if (!alreadyLogged) session.server.events.emit('refused', { ...session.actor, command: logged, code, reason });
    session.send(reply(code, text));
  };

  const wait = session.server.guard.commandDelay(session);
  if (wait > 0) {
    await new Promise((r) => setTimeout(r, wait).unref());
    if (session.closed) return;
  }
  if (verb === '') return refuse(500, 'Empty command.', 'empty command');
  // Only what cannot be a command word at all is scored (binary, punctuation, a protocol spoken at
  // the wrong port): a word a client tries (XSHA256, a checksum extension) is an unknown command.
  if (!/^[A-Z][A-Z0-9]{0,15}$/.test(verb)) return refuse(500, 'Syntax error, command unrecognized.', 'malformed verb');
  const spec = session.server.commands.get(verb);
  if (!spec) {
    // Known but not offered: before login that is nobody's business (530, like any other command).
    if (UNIMPLEMENTED_VERBS.has(verb)) {
      if (session.state !== 'ready' && !SECURITY_VERBS.has(verb)) return refuse(530, 'Please login with USER and PASS.', 'not logged in');
      return refuse(502, 'Command not implemented.', 'not implemented');
    }
    return refuse(500, 'Syntax error, command unrecognized.', 'unknown command');
  }
  usesRest = spec.usesRest === true;
  // RFC 959: RNTO must come right after RNFR; anything else in between cancels the rename.
  if (spec.name !== 'RNTO') session.renameFrom = undefined;
  if (session.state !== 'ready' && !spec.preLogin) {
    return refuse(530, 'Please login with USER and PASS.', 'not logged in');
  }
  // Decoded, bytes that are not UTF-8 all become U+FFFD: two different names would meet in one
  // file, and two different passwords would be the same one.
  if (!utf8) return refuse(501, 'Command line is not valid UTF-8.', 'invalid UTF-8');
  if (/[\0\r]/.test(arg)) return refuse(501, 'Invalid character in argument.', 'control character in argument');
  if (spec.arg === 'none' && arg.trim() !== '') return refuse(501, 'Syntax error: no argument expected.', 'unexpected argument');
  if (spec.arg === 'required' && arg.trim() === '') return refuse(501, 'Syntax error: argument required.', 'missing argument');
  if (spec.permission && session.user && !hasPermission(session.user, spec.permission)) {
    return refuse(550, 'Permission denied.', `missing permission ${spec.permission}`);
  }

  let result: Reply | void;
  try {
    result = await spec.handler(session, arg);
  } catch (error) {
    const ftp = toFtpError(error);
    const escape = error instanceof StorageError && error.kind === 'outside-jail';
    if (escape) session.server.events.emit('security', { ...session.actor, event: 'jail-escape-refused', detail: verb });
    const internal = ftp.code === 451 && !(error instanceof StorageError);
    if (internal) session.server.events.emit('session-error', { ...session.actor, error });
    return refuse(ftp.code, ftp.text, ftp.logReason ?? ftp.text, ftp.logged || escape || internal);
  }
  if (usesRest) session.restOffset = 0;
  if (!result) return;
  // A refusal a handler answers itself is logged like a thrown one.
  if (result.code >= 400 && !result.logged) session.server.events.emit('refused', { ...session.actor, command: logged, code: result.code, reason: result.lines[0] ?? '' });
  session.send(result);
}
