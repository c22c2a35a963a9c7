import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { checkHome, isCidr } from '../config/values.js';
import { hashPassword, isPasswordHash, verifyDummy, verifyPassword, type PasswordVerifier } from './password.js';
import { checkPermissions, parsePermissions } from './permissions.js';
import { ALL_PERMISSIONS, ANONYMOUS_NAMES, type AuthContext, type User, type UserStore } from './types.js';
import { lockFile, syncDirectory } from '../state/files.js';
import { VerifyCache } from './verify-cache.js';

/*
 * The users file (JSON, mode 0600):
 *   { "version": 1, "users": [ { "name", "password", "home", "permissions", "enabled", ... } ] }
 * Field names are snake_case like the TOML configuration; `User` is the
 * camelCase view the server uses, and it never carries the hash.
 *
 * This module reads the file itself rather than through storage/: the users
 * file lives outside the FTP root and must never be reachable by clients.
 */

/** A users file that cannot be read, parsed or written; the message names the file, user and field. */
export class UsersFileError extends Error {
  override readonly name = 'UsersFileError';
}

/** A management call that does not fit the store's content (unknown user, duplicate, bad value). */
export class UserStoreError extends Error {
  override readonly name = 'UserStoreError';
}

const USER_NAME = /^(?![.-])[A-Za-z0-9._@-]{1,64}$/;

/** The problem with a user name, or null when it is valid. */
export function checkUserName(name: string): string | null {
  return USER_NAME.test(name)
    ? null
    : `invalid user name ${JSON.stringify(name)}: use 1-64 of A-Z a-z 0-9 . _ @ -, not starting with '.' or '-'`;
}

/** A valid home in one spelling: forward slashes, no empty or '.' segments; '' is the root. */
export function normalizeHome(home: string): string {
  const problem = checkHome(home);
  if (problem) throw new UserStoreError(problem);
  return home
    .split(/[/\\]/)
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

const problemToIssue = (check: (s: string) => string | null) => (s: string, ctx: z.RefinementCtx) => {
  const problem = check(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

const cidrList = z.array(z.string().refine(isCidr, { message: 'expected an IP address or CIDR, e.g. 192.168.1.0/24' }));

const userRecord = z.strictObject({
  name: z.string().superRefine(problemToIssue(checkUserName)),
  password: z.string().refine(isPasswordHash, {
    message: 'expected an scrypt hash (scrypt$N$r$p$salt$hash); set it with `moat user passwd`',
  }),
  home: z.string().superRefine(problemToIssue(checkHome)),
  permissions: z.string().superRefine(problemToIssue(checkPermissions)),
  enabled: z.boolean().default(true),
  tls_control: z.enum(['off', 'optional', 'required']).optional(),
  tls_data: z.enum(['optional', 'required']).optional(),
  tls_data_session: z.enum(['same-user', 'same-connection', 'off']).optional(),
  allow_from: cidrList.optional(),
  deny_from: cidrList.optional(),
  max_sessions: z.number().int().min(1).max(1_000_000).optional(),
});

const usersFile = z.strictObject({
  version: z.literal(1),
  users: z.array(userRecord),
});

type UserRecord = z.infer<typeof userRecord>;

function toUser(r: UserRecord): User {
  const user: User = { name: r.name, home: r.home, permissions: r.permissions, enabled: r.enabled };
  if (r.tls_control !== undefined) user.tlsControl = r.tls_control;
  if (r.tls_data !== undefined) user.tlsData = r.tls_data;
  if (r.tls_data_session !== undefined) user.tlsDataSession = r.tls_data_session;
  if (r.allow_from !== undefined) user.allowFrom = [...r.allow_from];
  if (r.deny_from !== undefined) user.denyFrom = [...r.deny_from];
  if (r.max_sessions !== undefined) user.maxSessions = r.max_sessions;
  return user;
}

/** "users[2] (alice).password" from a zod issue path, using the raw data to name the user. */
function describePath(path: readonly PropertyKey[], raw: unknown): string {
  let out = '';
  let node: unknown = raw;
  for (const key of path) {
    out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
    node = node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined;
    if (typeof key === 'number' && out.startsWith('users[') && node !== null && typeof node === 'object') {
      const name = (node as Record<string, unknown>)['name'];
      if (typeof name === 'string') out += ` (${JSON.stringify(name)})`;
    }
  }
  return out === '' ? '(top level)' : out;
}

function parseUsersFile(file: string, text: string): Map<string, UserRecord> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsersFileError(`users file ${file}: not valid JSON: ${(err as Error).message}`);
  }
  const result = usersFile.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${describePath(i.path, raw)}: ${i.message}`);
    throw new UsersFileError(`users file ${file} is invalid:\n${lines.join('\n')}`);
  }
  const users = new Map<string, UserRecord>();
  result.data.users.forEach((u, i) => {
    if (users.has(u.name)) throw new UsersFileError(`users file ${file}: users[${i}].name: user "${u.name}" appears twice`);
    users.set(u.name, u);
  });
  return users;
}

/** What identifies one version of the file; an atomic rename changes the inode even when size and mtime match. */
interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
  /** Changes with permissions and owner too: a file made readable again is read again. */
  ctimeMs: number;
}

const sameStamp = (a: FileStamp | null, b: FileStamp | null): boolean =>
  a === b || (a !== null && b !== null && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs);

/**
 * Stat and read through one handle, so the stamp always belongs to the
 * content read, even when the file is replaced in between.
 */
async function readStamped(file: string): Promise<{ stamp: FileStamp | null; text: string | null }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { stamp: null, text: null };
    throw new UsersFileError(`cannot read users file ${file}: ${(err as Error).message}`);
  }
  try {
    const s = await handle.stat();
    const text = await handle.readFile('utf8');
    return { stamp: { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs }, text };
  } catch (err) {
    throw new UsersFileError(`cannot read users file ${file}: ${(err as Error).message}`);
  } finally {
    await handle.close();
  }
}

async function currentStamp(file: string): Promise<FileStamp | null> {
  try {
    const s = await stat(file);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UsersFileError(`cannot read users file ${file}: ${(err as Error).message}`);
  }
}

export interface FileUserStoreOptions {
  /** Password check; injectable so tests can count scrypt runs. Default: verifyPassword. */
  verify?: PasswordVerifier;
  /** Cache of recent successful verifications; `false` turns it off. Default: a new VerifyCache. */
  cache?: VerifyCache | false;
  /** Least time between two checks of the file for changes, made by authenticate and lookup. Default 1000 ms. */
  reloadIntervalMs?: number;
  /**
   * Called when the file changed on disk but the new content is invalid.
   * The store keeps serving the last valid content, so a typo made while
   * editing by hand does not lock every user out; the server should log this.
   */
  onReloadError?: (err: Error) => void;
  /**
   * Called when new content was loaded: how many users it holds, and whether
   * the file is gone (then nobody can log in; the server should say so loudly).
   */
  onReloaded?: (users: number, missing: boolean) => void;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Users from a JSON file. The server constructs it with `FileUserStore.open`
 * and calls `authenticate`/`lookup`; the `moat user` CLI uses the management
 * methods and `save`. Changes saved by the CLI while the server runs are
 * picked up by the server within `reloadIntervalMs`.
 *
 * Per-user address rules (allowFrom/denyFrom) and session caps are returned
 * on the User, not enforced here: the guard applies them, in one place.
 */
export class FileUserStore implements UserStore {
  private users: Map<string, UserRecord>;
  private stamp: FileStamp | null;
  private lastCheck: number;
  private reloading: Promise<boolean> | null = null;
  private readonly verify: PasswordVerifier;
  private readonly cache: VerifyCache | null;
  private readonly reloadIntervalMs: number;
  private readonly onReloadError: (err: Error) => void;
  private readonly onReloaded: (users: number, missing: boolean) => void;
  private readonly now: () => number;

  private constructor(
    readonly file: string,
    loaded: { users: Map<string, UserRecord>; stamp: FileStamp | null },
    options: FileUserStoreOptions,
  ) {
    this.users = loaded.users;
    this.stamp = loaded.stamp;
    this.verify = options.verify ?? verifyPassword;
    this.cache = options.cache === false ? null : (options.cache ?? new VerifyCache());
    this.reloadIntervalMs = options.reloadIntervalMs ?? 1000;
    this.onReloadError = options.onReloadError ?? (() => {});
    this.onReloaded = options.onReloaded ?? (() => {});
    this.now = options.now ?? Date.now;
    this.lastCheck = this.now();
  }

  /** Load the file; a missing file is an empty store (created by the first `save`). */
  static async open(file: string, options: FileUserStoreOptions = {}): Promise<FileUserStore> {
    const { stamp, text } = await readStamped(file);
    const users = text === null ? new Map<string, UserRecord>() : parseUsersFile(file, text);
    return new FileUserStore(file, { users, stamp }, options);
  }

  async authenticate(name: string, password: string, _context: AuthContext): Promise<User | null> {
    await this.reloadIfDue();
    const record = this.users.get(name);
    if (!record) {
      await verifyDummy(password, this.verify);
      return null;
    }
    const check = (): Promise<boolean> => this.verify(password, record.password);
    const ok = await (this.cache ? this.cache.verify(name, password, record.password, check) : check());
    // The password is checked even for a disabled user, so that the answer
    // takes the same time and does not reveal that the account exists.
    return ok && record.enabled ? toUser(record) : null;
  }

  /** The user, enabled or not, without checking a password; null when unknown. */
  async lookup(name: string): Promise<User | null> {
    await this.reloadIfDue();
    return this.get(name);
  }

  /**
   * Re-read the file if it changed since it was last read. Users whose
   * password changed or who were removed lose their cached verifications.
   * Returns true when new content was loaded; throws UsersFileError (and
   * keeps the current content) when the new content is invalid.
   */
  async reload(): Promise<boolean> {
    const current = await currentStamp(this.file);
    if (sameStamp(current, this.stamp)) return false;
    // Record the stamp first: a version that cannot be read, or is invalid, is reported once, not on every login.
    this.stamp = current;
    const { stamp, text } = await readStamped(this.file);
    this.stamp = stamp;
    const next = text === null ? new Map<string, UserRecord>() : parseUsersFile(this.file, text);
    for (const [name, old] of this.users) {
      if (next.get(name)?.password !== old.password) this.cache?.forgetUser(name);
    }
    this.users = next;
    this.onReloaded(next.size, text === null);
    return true;
  }

  list(): User[] {
    return [...this.users.values()].map(toUser);
  }

  get(name: string): User | null {
    const record = this.users.get(name);
    return record ? toUser(record) : null;
  }

  async add(
    name: string,
    password: string,
    options: { home?: string; permissions?: string; enabled?: boolean } = {},
  ): Promise<User> {
    const badName = checkUserName(name);
    if (badName) throw new UserStoreError(badName);
    // With anonymous access on, these names never reach the users file: the account would be unusable.
    if (ANONYMOUS_NAMES.has(name.toLowerCase())) throw new UserStoreError(`"${name}" is reserved for anonymous logins (see anonymous.enabled)`);
    if (this.users.has(name)) throw new UserStoreError(`user "${name}" already exists`);
    const record: UserRecord = {
      name,
      password: await hashPassword(password),
      home: normalizeHome(options.home ?? name),
      permissions: this.permissions(options.permissions ?? ALL_PERMISSIONS),
      enabled: options.enabled ?? true,
    };
    this.users.set(name, record);
    return toUser(record);
  }

  async setPassword(name: string, password: string): Promise<void> {
    const record = this.require(name);
    record.password = await hashPassword(password);
    this.cache?.forgetUser(name);
  }

  remove(name: string): void {
    this.require(name);
    this.users.delete(name);
    this.cache?.forgetUser(name);
  }

  setEnabled(name: string, enabled: boolean): void {
    this.require(name).enabled = enabled;
  }

  /**
   * Write the file atomically: a temporary file with mode 0600 in the same
   * folder, fsync, then rename over the old one, so a server reading it
   * concurrently sees either the old or the new content, never half of one.
   *
   * Refuses to overwrite a file that changed since this store read it, so
   * two `moat user` commands run at once cannot silently drop each other's
   * change: the check and the rename happen under a lock file
   * (`<file>.lock`, created exclusively), so no save slips in between.
   */
  async save(): Promise<void> {
    const dir = dirname(this.file);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new UsersFileError(`cannot write users file ${this.file}: ${(err as Error).message}`);
    }
    const release = await lockFile(`${this.file}.lock`).catch((err: Error) => {
      throw new UsersFileError(err.message);
    });
    try {
      if (!sameStamp(await currentStamp(this.file), this.stamp)) {
        throw new UsersFileError(`users file ${this.file} was changed by another process since it was read; run the command again`);
      }
      await this.write(dir);
    } finally {
      await release();
    }
  }

  private async write(dir: string): Promise<void> {
    const content = JSON.stringify({ version: 1, users: [...this.users.values()] }, null, 2) + '\n';
    const temp = join(dir, `.${basename(this.file)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, 'wx', 0o600);
      try {
        // The umask could only narrow 0600, but an explicit chmod leaves no doubt.
        await handle.chmod(0o600);
        await handle.writeFile(content, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw new UsersFileError(`cannot write users file ${this.file}: ${(err as Error).message}`);
    }
    await syncDirectory(dir);
    this.stamp = await currentStamp(this.file);
  }

  private async reloadIfDue(): Promise<void> {
    const now = this.now();
    if (now - this.lastCheck < this.reloadIntervalMs) return;
    this.lastCheck = now;
    // Logins that arrive during a reload share it instead of each reading the file.
    this.reloading ??= this.reload()
      .catch((err: Error) => {
        this.onReloadError(err);
        return false;
      })
      .finally(() => {
        this.reloading = null;
      });
    await this.reloading;
  }

  private require(name: string): UserRecord {
    const record = this.users.get(name);
    if (!record) throw new UserStoreError(`no user "${name}"`);
    return record;
  }

  private permissions(letters: string): string {
    try {
      return parsePermissions(letters);
    } catch (err) {
      throw new UserStoreError((err as Error).message);
    }
  }
}
