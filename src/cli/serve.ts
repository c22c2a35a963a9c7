import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FileUserStore, UsersFileError, type FileUserStoreOptions } from '../auth/file-store.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { MoatConfig } from '../config/schema.js';
import { weakerOptions } from '../config/weaker.js';
import { bansFileOf } from '../guard/bans.js';
import { dropPrivileges, prepareFor, rootDecision } from '../guard/privileges.js';
import { attachLogger, checkLogFile, createLogger, LogFileError } from '../observe/logger.js';
import { controlSocketOf, openControlSocket } from '../server/control-socket.js';
import { MoatServer } from '../server/server.js';
import { nativeStatus } from '../storage/native.js';
import { addServeOptions, flagsToConfig, problemWithFlag, type ServeFlags } from './serve-options.js';
import { isZeroConfigStart, prepareTls, tlsStartupLines, tryCommand, watchTls } from './serve-tls.js';
import { CliError } from './user.js';

export function usersFileOf(config: MoatConfig): string {
  return config.users_file || join(config.state_dir, 'users.json');
}

/** Privilege flags (see src/guard/privileges.ts): only `serve` and `check-config` take them. */
type Flags = ServeFlags & { runAs?: string; allowRoot?: boolean };

function addPrivilegeOptions(cmd: Command): Command {
  return cmd
    .option('--run-as <user[:group]>', 'when started as root: bind, then switch to this user (and group)')
    .option('--allow-root', 'allow running as root on non-loopback listeners without run_as');
}

async function readConfig(flags: Flags): Promise<MoatConfig> {
  const given = { ...flagsToConfig(flags), run_as: flags.runAs, allow_root: flags.allowRoot ? true : undefined };
  try {
    return await loadConfig(flags.config, given);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`invalid configuration:\n  ${error.problems.map((p) => problemWithFlag(p, given)).join('\n  ')}`);
    throw error;
  }
}

/**
 * First start on the embedded default: no users file anywhere yet, so create
 * `demo` (home = the root) with a random password shown once.
 */
async function bootstrapDemo(config: MoatConfig, usersFile: string): Promise<string | undefined> {
  if (config.users_file !== '' || existsSync(usersFile)) return undefined;
  const store = await FileUserStore.open(usersFile, { cache: false });
  const password = randomBytes(12).toString('base64url');
  await store.add('demo', password, { home: '.', permissions: 'elradfmwMT' });
  await store.save();
  return password;
}

export function registerServeCommands(program: Command): void {
  addPrivilegeOptions(addServeOptions(program.command('serve').description('run the FTP server (no config file needed: flags or defaults)'))).action(
    async (flags: Flags) => {
      const config = await readConfig(flags);
      await serve(config, isZeroConfigStart(flags));
    },
  );
  addPrivilegeOptions(
    addServeOptions(
      program
        .command('check-config')
        .description('validate the configuration and flags, and what serve would refuse at start (certificate and key, users file, log_file, run_as), then exit'),
    ),
  ).action(
    async (flags: Flags) => {
      const config = await readConfig(flags);
      await preflight(config);
      process.stdout.write(`configuration ok (${flags.config ?? 'no file'}; root ${resolve(config.root)})\n`);
    },
  );
}

function privilegesFor(config: MoatConfig): ReturnType<typeof rootDecision> {
  let privileges;
  try {
    privileges = rootDecision(config);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  if (privileges.action === 'refuse') throw new CliError(privileges.message);
  return privileges;
}

function logFileChecked<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof LogFileError) throw new CliError(error.message);
    throw error;
  }
}

async function openUsers(file: string, options?: FileUserStoreOptions): Promise<FileUserStore> {
  try {
    return await FileUserStore.open(file, options);
  } catch (error) {
    if (error instanceof UsersFileError) throw new CliError(error.message);
    throw error;
  }
}

/**
 * root and state_dir must be folders, or lie under one: a state_dir that is (or
 * is under) a file would leave bans in memory only (each write failing), a
 * root that is one cannot be served.
 */
function foldersUsable(config: MoatConfig): void {
  for (const [key, folder] of [
    ['root', config.root],
    ['state_dir', config.state_dir],
  ] as const) {
    // The folder itself, or the nearest part of its path that exists (it is created below that).
    let at = resolve(folder);
    while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
    if (!statSync(at).isDirectory()) throw new CliError(at === resolve(folder) ? `${key} ${folder} is not a folder` : `${key} ${folder}: ${at} is not a folder`);
  }
}

/**
 * What serve would refuse at start, checked without starting anything or
 * writing a file (check-config). Only binding the listeners is left untried.
 */
async function preflight(config: MoatConfig): Promise<void> {
  privilegesFor(config);
  foldersUsable(config);
  if (config.log_file) logFileChecked(() => checkLogFile(config.log_file, false));
  const usersFile = usersFileOf(config);
  if (existsSync(usersFile)) await openUsers(usersFile, { cache: false });
  // A configured certificate and key are loaded and matched; a self-signed one would be generated, so it is not.
  if (config.tls.control !== 'off' && config.tls.cert) await prepareTls(config, { zeroConfig: false, log: createLogger({ level: 'silent' }) });
}

async function serve(config: MoatConfig, zeroConfig = false): Promise<void> {
  const privileges = privilegesFor(config);
  foldersUsable(config);
  const log = logFileChecked(() => createLogger({ level: config.log_level, file: config.log_file || undefined }));
  // Node's defaults: SIGUSR1 opens its debugger on 127.0.0.1:9229 (any local user could then run code
  // in the server), SIGUSR2 ends the process without a word. Log rotation sends such signals.
  for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) {
    process.on(signal, () => log.warn({ event: 'signal-ignored', signal }, `${signal} ignored (SIGTERM stops the server)`));
  }
  const usersFile = usersFileOf(config);
  const demoPassword = await bootstrapDemo(config, usersFile);
  const tls = await prepareTls(config, { zeroConfig, log });
  if (privileges.action === 'drop') {
    const { runAs } = privileges;
    // Moat's own certificate is re-read on SIGHUP and when it changes, by then as the run_as user.
    const own = tls?.selfSigned ? [dirname(tls.certFile), tls.certFile, tls.keyFile] : [];
    const changed = await prepareFor(runAs, { stateDir: config.state_dir, usersFile, bansFile: bansFileOf(config.state_dir), root: config.root, own });
    if (changed.length) log.info({ event: 'privileges', chowned: changed, user: runAs.user }, 'files handed to the run_as user');
  }
  const users = await openUsers(usersFile, {
    onReloaded: (count, missing) => {
      if (missing) log.warn({ event: 'users-file-missing', file: usersFile }, `${usersFile} is gone: no user can log in until it is back`);
      else log.info({ event: 'users-reloaded', file: usersFile, users: count }, `${usersFile} reloaded: ${count} users`);
    },
    onReloadError: (error) =>
      log.error({ event: 'users-reload-failed', file: usersFile, error: error.message }, `${usersFile} changed but cannot be used, still serving its previous content: ${error.message}`),
  });
  const server = new MoatServer({ config, users, ...tls?.serverParts() });
  attachLogger(server.events, log);

  for (const { key, detail } of weakerOptions(config)) {
    log.warn({ event: 'weaker-option', key, security: true }, `${key}: ${detail}`);
  }
  const native = nativeStatus();
  if (native.available) log.info({ event: 'native-helper', available: true, sendfile: config.transfer.sendfile }, 'native helper loaded (sendfile downloads, threaded uploads and listings, upload reset check)');
  else log.warn({ event: 'native-helper', available: false, reason: native.reason }, `transfers and listings take the JavaScript paths, and an upload cut by a reset may pass for complete: ${native.reason}`);
  let addresses: string[];
  let implicit: string[];
  try {
    addresses = await server.listen();
    implicit = tls ? await tls.attach(server) : [];
  } catch (error) {
    // Nothing half-started: a server missing one of its listeners is not what was asked for.
    await server.close();
    const message = (error as Error).message;
    log.fatal({ event: 'startup-failed', error: message }, message);
    throw new CliError(message);
  }
  // Only once serving: one session's bug must never end the process, so log it and keep serving.
  process.on('uncaughtException', (error) => log.error({ event: 'uncaught-exception', error: String(error?.stack ?? error) }, 'uncaught exception'));
  process.on('unhandledRejection', (error) => log.error({ event: 'unhandled-rejection', error: String((error as Error)?.stack ?? error) }, 'unhandled rejection'));
  // Listeners are bound: give up root now, synchronously, before the event loop runs any client's command.
  if (privileges.action === 'drop') {
    const { runAs } = privileges;
    try {
      dropPrivileges(runAs);
    } catch (error) {
      log.fatal({ event: 'privileges', error: String(error) }, 'could not drop privileges');
      process.exit(1);
    }
    log.info({ event: 'privileges', user: runAs.user, uid: runAs.uid, group: runAs.group, gid: runAs.gid }, `running as ${runAs.user}:${runAs.group}`);
  } else if (privileges.action === 'stay') {
    log.warn({ event: 'running-as-root', security: true }, privileges.warning);
    process.stderr.write(`moat: warning: ${privileges.warning}\n`);
  } else if (config.run_as) {
    log.warn({ event: 'privileges' }, 'run_as is ignored: Moat was not started as root');
  }
  // After the privilege drop, so the socket belongs to the user the server runs as.
  const controlPath = controlSocketOf(config.state_dir);
  const control = await openControlSocket(controlPath, { who: () => ({ sessions: server.who() }) }, (error) =>
    log.warn({ event: 'control-socket', path: controlPath, error: error.message }, `control socket: ${error.message}`),
  ).catch((error: Error) => {
    log.warn({ event: 'control-socket', path: controlPath, error: error.message }, `moat who will not work: ${error.message}`);
    return undefined;
  });
  // Before the start-up lines: whoever reads "Moat is serving" may ask `moat who` at once.
  const first = addresses[0]!;
  const lines = [`Moat is serving ${resolve(config.root)} on ${addresses.map((a) => `ftp://${a}`).join(', ')}`];
  if (demoPassword) {
    lines.push(
      `Created user "demo" with password: ${demoPassword}`,
      `  (shown once; stored hashed in ${resolve(usersFile)}; change it with: moat user passwd demo --users ${usersFile})`,
      `Try: ${tryCommand(tls, 'demo', demoPassword, first)}`,
    );
  } else if (users.list().length === 0) {
    lines.push(`No users yet: add one with  moat user add NAME --users ${usersFile}`);
  }
  lines.push(...tlsStartupLines(tls, config, implicit, first));
  process.stderr.write(lines.join('\n') + '\n');
  if (tls) watchTls(tls);
  // Without TLS there is nothing to reload (the users file is re-read by itself), but Node's default would end the process.
  else process.on('SIGHUP', () => log.info({ event: 'signal-ignored', signal: 'SIGHUP' }, 'SIGHUP: no certificate to reload'));
  const stop = (signal: string) => {
    log.info({ event: 'shutdown', signal }, 'shutting down');
    control?.close();
    void server.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
