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
  /**
   * Every listener is called on its own: one (an embedder's, say) that throws,
   * or returns a promise that rejects, is reported as `server-error` and never
   * breaks the session that reported, nor keeps the listeners after it from
   * running, nor (a rejection) takes the process down.
   */
  override emit<K extends MoatEventName>(event: K, payload: MoatEventMap[K]): boolean {
    const listeners = this.rawListeners(event) as Array<(payload: MoatEventMap[K]) => unknown>;
    for (const listener of listeners) {
      try {
        const result = listener.call(this, payload);
        if (result instanceof Promise) result.catch((error: unknown) => this.#listenerFailed(event, error));
      } catch (error) {
        this.#listenerFailed(event, error);
      }
    }
    return listeners.length > 0;
  }

  #listenerFailed(event: MoatEventName, error: unknown): void {
    // A failing server-error listener is not reported to itself.
    if (event !== 'server-error') this.emit('server-error', { error, where: `listener of ${event}` });
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
