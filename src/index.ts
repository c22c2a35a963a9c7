/**
 * Moat as a library. The whole embedder contract is here: give a UserStore
 * (who may log in) and optionally a StorageFactory (where their bytes live),
 * listen, and subscribe to events.
 */
import { ConfigError, validateConfig } from './config/load.js';
import type { MoatConfig } from './config/schema.js';
import { attachLogger, createLogger } from './observe/logger.js';
import type { StorageFactory } from './server/context.js';
import { MoatServer } from './server/server.js';
import type { UserStore } from './auth/types.js';

export interface CreateServerOptions {
  /** Configuration as in moat.toml (snake_case keys); omitted keys take their defaults. */
  config?: Record<string, unknown>;
  users: UserStore;
  /** Default: LocalStorage under `config.root`, one home per user. */
  storage?: StorageFactory;
  /** Log JSON lines with pino at config.log_level (default: false, the embedder listens to events). */
  log?: boolean;
}

/**
 * Keys `moat serve` acts on that this function does not: refused, so a server
 * asked for TLS never serves in clear without saying so.
 */
function refuseServeOnlyKeys(config: MoatConfig): void {
  const problems: string[] = [];
  // A certificate means TLS for `moat serve` unless tls.control says off (and without one, validation
  // already refuses a TLS policy that asks for it).
  const certificate = config.tls.cert !== '' || config.tls.generate_self_signed;
  if ((certificate && config.tls.control !== 'off') || config.tls.implicit_listen.length > 0) {
    problems.push('tls: createServer serves plain FTP only (FTPS is set up by `moat serve`); leave tls.cert, tls.key and tls.implicit_listen unset');
  }
  if (config.run_as) problems.push('run_as: dropping privileges is the embedding process\'s own business; leave it unset');
  if (config.users_file) problems.push('users_file: give the users as `users` (for example a FileUserStore); leave it unset');
  if (problems.length) throw new ConfigError(problems);
}

export function createServer(options: CreateServerOptions): MoatServer {
  const config: MoatConfig = validateConfig(options.config ?? {});
  refuseServeOnlyKeys(config);
  const server = new MoatServer({ config, users: options.users, ...(options.storage ? { storage: options.storage } : {}) });
  if (options.log) attachLogger(server.events, createLogger({ level: config.log_level, file: config.log_file || undefined }));
  return server;
}

export { MoatServer, StartupError } from './server/server.js';
export type { StorageFactory } from './server/context.js';
export { MoatEvents, type MoatEventMap, type Actor, type TransferEvent } from './observe/events.js';
export type { User, UserStore, AuthContext, PermissionLetter, TlsPolicy, DataSessionPolicy } from './auth/types.js';
export { ALL_PERMISSIONS, READ_ONLY_PERMISSIONS } from './auth/types.js';
export { FileUserStore } from './auth/file-store.js';
export { hashPassword, verifyPassword } from './auth/password.js';
export type { Storage, Download, DirectSource, ChunkReleasingSink, EntryTable, TableListing, FileInfo, FileKind, Upload, WriteOptions, VirtualPath, StorageErrorKind } from './storage/types.js';
export { StorageError } from './storage/types.js';
export { LocalStorage, type LocalStorageOptions } from './storage/local.js';
export { nativeStatus } from './storage/native.js';
export { ConfigError, validateConfig, loadConfig } from './config/load.js';
export type { MoatConfig } from './config/schema.js';
export { weakerOptions, type WeakerOption } from './config/weaker.js';
