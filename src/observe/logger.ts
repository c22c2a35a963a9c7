import { accessSync, closeSync, constants, existsSync, fstatSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import type { MoatEvents } from './events.js';

export type { Logger };

/**
 * One synchronous writer per process: every event is one JSON line written
 * whole, so lines from concurrent sessions never interleave.
 */
export function createLogger(options: { level: string; file?: string }): Logger {
  if (options.file) checkLogFile(options.file);
  const destination = options.file
    ? pino.destination({ dest: options.file, sync: true })
    : pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Thrown when log_file cannot be written: the message names the key and the reason. */
export class LogFileError extends Error {}

/**
 * A log file must be a file we can append to; its folder must exist (a
 * mistyped path is an error, not a tree of folders created as root). Without
 * `create` (check-config) a missing file is not created: its folder is checked.
 */
export function checkLogFile(file: string, create = true): void {
  if (!create && !existsSync(file)) {
    try {
      accessSync(dirname(file), constants.W_OK);
    } catch (error) {
      throw new LogFileError(`log_file ${file}: ${whyNot(error as NodeJS.ErrnoException)}`, { cause: error });
    }
    if (!statSync(dirname(file)).isDirectory()) throw new LogFileError(`log_file ${file}: its folder is not a folder`);
    return;
  }
  let fd: number;
  try {
    fd = openSync(file, 'a', 0o640);
  } catch (error) {
    throw new LogFileError(`log_file ${file}: ${whyNot(error as NodeJS.ErrnoException)}`, { cause: error });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isCharacterDevice() && !st.isFIFO()) throw new LogFileError(`log_file ${file}: not a file`);
  } finally {
    closeSync(fd);
  }
}

function whyNot(e: NodeJS.ErrnoException): string {
  return e.code === 'ENOENT' ? 'its folder does not exist' : e.code === 'EISDIR' ? 'is a folder' : (e.code ?? e.message);
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Turn events into log lines. The password never reaches an event, so never a log. */
export function attachLogger(events: MoatEvents, log: Logger): void {
  events.on('listening', (e) => log.info({ event: 'listening', ...e }, 'server listening'));
  events.on('session-open', (e) => log.info({ event: 'session-open', ...e }, 'session opened'));
  events.on('session-close', (e) => log.info({ event: 'session-close', ...e }, 'session closed'));
  events.on('login', (e) => log.info({ event: 'login', outcome: 'success', ...e }, 'login'));
  events.on('login-failed', (e) => log.warn({ event: 'login-failed', outcome: 'failure', ...e }, 'login failed'));
  events.on('logout', (e) => log.info({ event: 'logout', ...e }, 'logout'));
  for (const kind of ['upload', 'download', 'list'] as const) {
    events.on(kind, (e) => log.info({ ...e, event: 'transfer' }, kind));
  }
  events.on('delete', (e) => log.info({ event: 'delete', ...e }, 'delete'));
  events.on('rename', (e) => log.info({ event: 'rename', ...e }, 'rename'));
  events.on('mkdir', (e) => log.info({ event: 'mkdir', ...e }, 'mkdir'));
  events.on('refused', (e) => log.info({ ...e, event: 'refused' }, 'command refused'));
  events.on('security', (e) => log.warn({ ...e, security: true }, e.event));
  events.on('session-error', (e) => log.error({ event: 'session-error', ...e, error: errorText(e.error) }, 'session error'));
  events.on('server-error', (e) => log.error({ event: 'server-error', where: e.where, error: errorText(e.error) }, 'server error'));
}
