import { EventEmitter } from 'node:events';

/** Who did something: present on every event so each log line can be attributed. */
export interface Actor {
  sessionId: string;
  ip: string;
  user?: string;
}

export interface TransferEvent extends Actor {
  direction: 'upload' | 'download' | 'list';
  command: string;
  path: string;
  bytes: number;
  durationMs: number;
  result: 'ok' | 'aborted' | 'failed';
  reason?: string;
}

/**
 * Everything Moat reports. Logs, the transfer log, metrics and embedders only
 * listen here; nothing below the server reaches up to them.
 */
export interface MoatEventMap {
  /** Once for the FTP listeners, once more for implicit-TLS ones (`implicitTls`). */
  listening: { addresses: string[]; implicitTls?: boolean };
  'session-open': Actor & { port: number; listener: string; secure: boolean };
  'session-close': Actor & { reason: string; durationMs: number };
  login: Actor & { secure: boolean };
  'login-failed': Actor & { reason: string };
  logout: Actor;
  upload: TransferEvent;
  download: TransferEvent;
  list: TransferEvent;
  delete: Actor & { path: string; kind: 'file' | 'dir' };
  rename: Actor & { from: string; to: string };
  mkdir: Actor & { path: string };
  refused: Actor & { command: string; code: number; reason: string };
  /** `offender`: the address to blame when it is not the session's client (a foreign data connection). */
  security: Actor & { event: string; detail?: string; offender?: string };
  'session-error': Actor & { error: unknown };
  'server-error': { error: unknown; where: string };
}

export type MoatEventName = keyof MoatEventMap;

export class MoatEvents extends EventEmitter {
  override emit<K extends MoatEventName>(event: K, payload: MoatEventMap[K]): boolean {
    try {
      return super.emit(event, payload);
    } catch (error) {
      // A listener (an embedder's, say) that throws must not break the session that reported.
      if (event !== 'server-error') super.emit('server-error', { error, where: `listener of ${event}` });
      return true;
    }
  }
  override on<K extends MoatEventName>(event: K, listener: (payload: MoatEventMap[K]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<K extends MoatEventName>(event: K, listener: (payload: MoatEventMap[K]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<K extends MoatEventName>(event: K, listener: (payload: MoatEventMap[K]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
}
