import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { checkUserName, FileUserStore, normalizeHome, UsersFileError, UserStoreError } from '../auth/file-store.js';
import { describePermissions, parsePermissions, PermissionError } from '../auth/permissions.js';
import { ALL_PERMISSIONS, type User } from '../auth/types.js';

/*
 * `moat user ...`: manage the users file.
 *
 * Error contract: every action rejects with CliError for anything the
 * operator caused (bad flag value, unknown user, unreadable users file).
 * The caller of `program.parseAsync` catches it, prints `moat: <message>` to
 * stderr and exits with `exitCode` (1). Any other error is a bug and is left
 * to surface with its stack.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode = 1;
}

/** Streams the commands use; tests pass their own. */
export interface UserCliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  /** Prompts go here, so stdout carries only results. */
  stderr: NodeJS.WritableStream;
}

const MIN_PASSWORD_LENGTH = 8;
const MAX_PASSWORD_LENGTH = 1024;
const MAX_STDIN_LINE = 64 * 1024;

/** Where the users file is: --users, or the configuration (-c) and --state-dir it is looked up from. */
export interface UsersFileFlags {
  users?: string;
  config?: string;
  stateDir?: string;
}

interface PasswordFlags {
  passwordStdin?: boolean;
  allowWeakPassword?: boolean;
}

export function registerUserCommands(
  program: Command,
  defaults: { usersFile: (where: UsersFileFlags) => Promise<string> },
  io: UserCliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): void {
  const print = (line: string): void => {
    io.stdout.write(line + '\n');
  };
  const openStore = async (flags: UsersFileFlags): Promise<FileUserStore> => {
    const file = flags.users ?? (await defaults.usersFile(flags));
    if (file === '') throw new CliError('no users file: pass --users FILE or set users_file in the configuration');
    return FileUserStore.open(file, { cache: false });
  };
  const user = program.command('user').description('manage the users file (a running server reads the changes at its next login)');
  // Every subcommand finds the users file the way the server does: --users, else the configuration's (-c), else <state-dir>/users.json.
  const command = (name: string): Command =>
    user
      .command(name)
      .option('--users <file>', 'users file (default: users_file from the configuration, else <state-dir>/users.json)')
      .option('-c, --config <file>', 'configuration file, for its users_file and state_dir')
      .option('--state-dir <dir>', 'state folder whose users.json to use when no users_file is configured (default ./.moat)');

  command('add')
    .description('add a user; the password is asked twice on the terminal unless --password-stdin')
    .argument('<name>', "user name: 1-64 of A-Z a-z 0-9 . _ @ -, not starting with '.' or '-'")
    .option('--home <dir>', 'home folder relative to the server root (default: the user name)')
    .option('--perms <letters>', `permission letters, any of ${ALL_PERMISSIONS}`, ALL_PERMISSIONS)
    .option('--disabled', 'create the user disabled (cannot log in until `moat user enable`)')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--allow-weak-password', `accept a password shorter than ${MIN_PASSWORD_LENGTH} characters`)
    .action(
      cliAction(
        async (name: string, flags: PasswordFlags & { home?: string; perms: string; disabled?: boolean } & UsersFileFlags) => {
          const bad = checkUserName(name);
          if (bad) throw new CliError(bad);
          const store = await openStore(flags);
          if (store.get(name)) throw new CliError(`user "${name}" already exists in ${store.file}`);
          // Check every other input before asking for a password the operator would have to type again.
          // An empty --home (an unset shell variable) would mean the whole root: say so instead.
          if (flags.home !== undefined && flags.home.trim() === '') throw new CliError('--home is empty: give "." for the whole server root, or a folder');
          const home = normalizeHome(flags.home ?? name);
          const permissions = parsePermissions(flags.perms);
          const password = await readNewPassword(io, flags);
          const added = await store.add(name, password, { home, permissions, enabled: !flags.disabled });
          await store.save();
          const state = added.enabled ? '' : ', disabled';
          print(`added user "${name}" (home "${added.home || '.'}", permissions "${added.permissions}"${state}) to ${store.file}`);
          // Likely an unset shell variable: allowed (a placeholder account), but never silently.
          if (added.permissions === '') io.stderr.write(`moat: warning: "${name}" has no permissions: they can log in, but not list, read or write (see --perms)\n`);
        },
      ),
    );

  command('passwd')
    .description("set a user's password; the password is asked twice on the terminal unless --password-stdin")
    .argument('<name>', 'user name')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--allow-weak-password', `accept a password shorter than ${MIN_PASSWORD_LENGTH} characters`)
    .action(
      cliAction(async (name: string, flags: PasswordFlags & UsersFileFlags) => {
        const store = await openStore(flags);
        requireUser(store, name);
        const password = await readNewPassword(io, flags);
        await store.setPassword(name, password);
        await store.save();
        print(`password of "${name}" changed`);
      }),
    );

  command('del')
    .description('delete a user (their files stay in place)')
    .argument('<name>', 'user name')
    .action(
      cliAction(async (name: string, flags: UsersFileFlags) => {
        const store = await openStore(flags);
        requireUser(store, name);
        store.remove(name);
        await store.save();
        print(`deleted user "${name}"`);
      }),
    );

  command('list')
    .description('list users')
    .option('--json', 'print a JSON array instead of a table')
    .action(
      cliAction(async (flags: { json?: boolean } & UsersFileFlags) => {
        const store = await openStore(flags);
        const users = store.list();
        if (flags.json) print(JSON.stringify(users, null, 2));
        else if (users.length === 0) print(`no users in ${store.file}`);
        else print(table(users));
      }),
    );

  command('show')
    .description('show one user (never the password hash)')
    .argument('<name>', 'user name')
    .option('--json', 'print JSON instead of text')
    .action(
      cliAction(async (name: string, flags: { json?: boolean } & UsersFileFlags) => {
        const store = await openStore(flags);
        const found = requireUser(store, name);
        print(flags.json ? JSON.stringify(found, null, 2) : describeUser(found));
      }),
    );

  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    command(verb)
      .description(enabled ? 'allow a user to log in again' : 'stop a user from logging in, keeping the account')
      .argument('<name>', 'user name')
      .action(
        cliAction(async (name: string, flags: UsersFileFlags) => {
          const store = await openStore(flags);
          requireUser(store, name);
          store.setEnabled(name, enabled);
          await store.save();
          print(`${verb}d user "${name}"`);
        }),
      );
  }
}

/** Turn the errors the auth module raises for bad input into CliError; leave bugs alone. */
function cliAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof UsersFileError || err instanceof UserStoreError || err instanceof PermissionError) {
        throw new CliError(err.message);
      }
      throw err;
    }
  };
}

function requireUser(store: FileUserStore, name: string): User {
  const found = store.get(name);
  if (!found) throw new CliError(`no user "${name}" in ${store.file}`);
  return found;
}

async function readNewPassword(io: UserCliIo, flags: PasswordFlags): Promise<string> {
  let password: string;
  if (flags.passwordStdin) {
    password = await readFirstLine(io.stdin);
  } else {
    if (!io.stdin.isTTY) {
      throw new CliError('stdin is not a terminal: pipe the password in with --password-stdin');
    }
    const [first, again] = await promptPasswordTwice(io);
    if (again !== first) throw new CliError('the two passwords do not match');
    password = first;
  }
  if (password === '') throw new CliError('the password is empty');
  if (/[\0\r\n]/.test(password)) throw new CliError('the password must not contain NUL, CR or LF (FTP cannot send them)');
  const length = [...password].length;
  if (length > MAX_PASSWORD_LENGTH) throw new CliError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`);
  if (length < MIN_PASSWORD_LENGTH && !flags.allowWeakPassword) {
    throw new CliError(
      `the password is shorter than ${MIN_PASSWORD_LENGTH} characters (use --allow-weak-password to accept it anyway)`,
    );
  }
  return password;
}

/** The first line of a stream without its LF or CRLF; reading stops at the first newline. */
async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const nl = buf.indexOf(0x0a);
    chunks.push(nl === -1 ? buf : buf.subarray(0, nl));
    size += buf.length;
    if (nl !== -1) break;
    if (size > MAX_STDIN_LINE) throw new CliError('the first line of stdin is too long for a password');
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r$/, '');
}

/**
 * Ask for the password twice on the terminal without echo. readline in
 * terminal mode echoes through `output`, which here drops everything; the
 * questions go straight to stderr. One interface serves both questions so
 * that a pasted "pw<Enter>pw<Enter>" is not lost between them. Ctrl-C and
 * Ctrl-D cancel.
 */
async function promptPasswordTwice(io: UserCliIo): Promise<[string, string]> {
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: io.stdin, output: silent, terminal: true });
  const lines: string[] = [];
  let closed = false;
  let waiting: ((line: string | null) => void) | null = null;
  const deliver = (line: string | null): void => {
    const w = waiting;
    waiting = null;
    w?.(line);
  };
  rl.on('line', (line) => (waiting ? deliver(line) : lines.push(line)));
  rl.on('SIGINT', () => rl.close());
  rl.on('close', () => {
    closed = true;
    deliver(null);
  });
  const ask = async (question: string): Promise<string> => {
    io.stderr.write(question);
    const line = await new Promise<string | null>((resolve) => {
      if (lines.length > 0) resolve(lines.shift()!);
      else if (closed) resolve(null);
      else waiting = resolve;
    });
    io.stderr.write('\n');
    if (line === null) throw new CliError('cancelled');
    return line;
  };
  try {
    const first = await ask('Password: ');
    return [first, await ask('Repeat password: ')];
  } finally {
    rl.close();
  }
}

function table(users: User[]): string {
  const rows = [
    ['NAME', 'ENABLED', 'PERMISSIONS', 'HOME'],
    ...users.map((u) => [u.name, u.enabled ? 'yes' : 'no', u.permissions || '-', u.home || '.']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

function describeUser(u: User): string {
  const serverDefault = '(server setting)';
  const lines = [
    `name:             ${u.name}`,
    `enabled:          ${u.enabled ? 'yes' : 'no'}`,
    `home:             ${u.home || '.'} (relative to the server root)`,
    `permissions:      ${u.permissions || '(none)'}`,
    ...describePermissions(u.permissions).map((p) => `  ${p.granted ? '+' : '-'} ${p.letter}  ${p.description}`),
    `tls_control:      ${u.tlsControl ?? serverDefault}`,
    `tls_data:         ${u.tlsData ?? serverDefault}`,
    `tls_data_session: ${u.tlsDataSession ?? serverDefault}`,
    `allow_from:       ${u.allowFrom?.length ? u.allowFrom.join(', ') : '(any address)'}`,
    `deny_from:        ${u.denyFrom?.length ? u.denyFrom.join(', ') : '(none)'}`,
    `max_sessions:     ${u.maxSessions ?? serverDefault}`,
  ];
  return lines.join('\n');
}
