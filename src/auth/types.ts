/**
 * Permission letters, after pyftpdlib:
 *   e change directory   l list          r read (RETR)
 *   a append (APPE)       d delete file or directory (DELE, RMD)
 *   f rename              m make directory
 *   w write (STOR, STOU)  M chmod (SITE CHMOD)   T set mtime (MFMT)
 */
export type PermissionLetter = 'e' | 'l' | 'r' | 'a' | 'd' | 'f' | 'm' | 'w' | 'M' | 'T';

export const ALL_PERMISSIONS = 'elradfmwMT';
export const READ_ONLY_PERMISSIONS = 'elr';

/** The names that log in anonymously when anonymous access is on (any case). */
export const ANONYMOUS_NAMES = new Set(['anonymous', 'ftp']);

export type TlsPolicy = 'off' | 'optional' | 'required';
export type DataSessionPolicy = 'same-user' | 'same-connection' | 'off';

/** A user as the server needs it after login. Never carries a password or hash. */
export interface User {
  name: string;
  /** Home folder relative to the server root ('' or '.' is the root itself). */
  home: string;
  permissions: string;
  enabled: boolean;
  /** Per-user overrides; undefined means "use the server's setting". */
  tlsControl?: TlsPolicy;
  tlsData?: 'optional' | 'required';
  tlsDataSession?: DataSessionPolicy;
  /** CIDR lists; empty or undefined means no restriction from this user. */
  allowFrom?: string[];
  denyFrom?: string[];
  maxSessions?: number;
  anonymous?: boolean;
}

export interface AuthContext {
  remoteAddress: string;
  secure: boolean;
}

/**
 * The embedder's user source. `authenticate` resolves to the user on success and
 * to null on any failure (unknown user, wrong password, disabled) so that callers
 * cannot tell the cases apart.
 */
export interface UserStore {
  authenticate(name: string, password: string, context: AuthContext): Promise<User | null>;
  /** Optional: look a user up without a password (for per-user TLS policy before PASS). */
  lookup?(name: string): Promise<User | null>;
}

export function hasPermission(user: Pick<User, 'permissions'>, letter: PermissionLetter): boolean {
  return user.permissions.includes(letter);
}
