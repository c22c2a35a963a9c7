import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FileUserStore } from '../auth/file-store.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { MoatConfig } from '../config/schema.js';
import { attachLogger, createLogger } from '../observe/logger.js';
import { MoatServer } from '../server/server.js';
import { addServeOptions, flagsToConfig, type ServeFlags } from './serve-options.js';
import { CliError } from './user.js';

export function usersFileOf(config: MoatConfig): string {
  return config.users_file || join(config.state_dir, 'users.json');
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function readConfig(flags: ServeFlags): Promise<MoatConfig> {
  try {
    return await loadConfig(flags.config, flagsToConfig(flags));
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`invalid configuration:\n  ${error.problems.join('\n  ')}`);
    throw error;
  }
}

/**
 * First start on the embedded default: no users file anywhere yet, so create
 * `demo` (home = the root) with a random password shown once.
 */
async function bootstrapDemo(config: MoatConfig, usersFile: string): Promise<string | undefined> {
  if (config.users_file !== '' || (await exists(usersFile))) return undefined;
  const store = await FileUserStore.open(usersFile, { cache: false });
  const password = randomBytes(12).toString('base64url');
  await store.add('demo', password, { home: '.', permissions: 'elradfmwMT' });
  await store.save();
  return password;
}

export function registerServeCommands(program: Command): void {
  addServeOptions(program.command('serve').description('run the FTP server (no config file needed: flags or defaults)')).action(
    async (flags: ServeFlags) => {
      const config = await readConfig(flags);
      await serve(config);
    },
  );
  addServeOptions(program.command('check-config').description('validate the configuration and flags, then exit')).action(
    async (flags: ServeFlags) => {
      const config = await readConfig(flags);
      process.stdout.write(`configuration ok (${flags.config ?? 'no file'}; root ${resolve(config.root)})\n`);
    },
  );
}

async function serve(config: MoatConfig): Promise<void> {
  const log = createLogger({ level: config.log_level, file: config.log_file || undefined });
  const usersFile = usersFileOf(config);
  const demoPassword = await bootstrapDemo(config, usersFile);
  const users = await FileUserStore.open(usersFile);
  const server = new MoatServer({ config, users });
  attachLogger(server.events, log);

  // One session's bug must never end the process: log it and keep serving.
  process.on('uncaughtException', (error) => log.error({ event: 'uncaught-exception', error: String(error?.stack ?? error) }, 'uncaught exception'));
  process.on('unhandledRejection', (error) => log.error({ event: 'unhandled-rejection', error: String((error as Error)?.stack ?? error) }, 'unhandled rejection'));

  const addresses = await server.listen();
  const first = addresses[0]!;
  const lines = [`Moat is serving ${resolve(config.root)} on ${addresses.map((a) => `ftp://${a}`).join(', ')}`];
  if (demoPassword) {
    lines.push(
      `Created user "demo" with password: ${demoPassword}`,
      `  (shown once; stored hashed in ${resolve(usersFile)}; change it with: moat user passwd demo --users ${usersFile})`,
      `Try: curl --user demo:${demoPassword} ftp://${first}/`,
    );
  } else if (users.list().length === 0) {
    lines.push(`No users yet: add one with  moat user add NAME --users ${usersFile}`);
  }
  process.stderr.write(lines.join('\n') + '\n');

  const stop = (signal: string) => {
    log.info({ event: 'shutdown', signal }, 'shutting down');
    void server.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
