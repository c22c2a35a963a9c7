import type { PermissionLetter } from '../auth/types.js';
import type { Reply } from '../session/reply.js';
import type { Session } from '../session/session.js';

/**
 * One FTP command, self-describing: HELP, FEAT and the pre-login allow-list are
 * generated from these records, so they cannot drift from what is implemented.
 */
export interface CommandSpec {
  name: string;
  /** Other verbs that run the same handler (XPWD for PWD, ...). */
  aliases?: readonly string[];
  /** Shown by HELP <name>. */
  syntax: string;
  help: string;
  /** FEAT line(s), or a function of the session (TLS lines only when TLS is set up). */
  feat?: string | ((session: Session) => string | undefined);
  /** Answered before login (RFC: USER, PASS, AUTH, FEAT, ...). Default: no, 530. */
  preLogin?: boolean;
  /** Answered at once while a transfer runs (ABOR, STAT, QUIT); others wait their turn. */
  duringTransfer?: boolean;
  arg: 'none' | 'required' | 'optional';
  /**
   * Takes the REST offset (RETR, STOR, APPE, STOU): whatever the answer, a
   * refusal included, the offset is spent, as in vsftpd; it never carries over
   * to a later transfer.
   */
  usesRest?: boolean;
  /** Permission letter the logged-in user needs. */
  permission?: PermissionLetter;
  handler(session: Session, arg: string): Promise<Reply | void> | Reply | void;
}
