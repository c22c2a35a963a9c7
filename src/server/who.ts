import type { Session } from '../session/session.js';

/** One connected session, as `moat who` and `MoatServer.who()` show it. */
export interface SessionSummary {
  id: string;
  ip: string;
  port: number;
  /** The listener ("host:port") the client connected to. */
  listener: string;
  /** The logged-in user; absent before login. */
  user?: string;
  /** The control connection is encrypted. */
  tls: boolean;
  connectedAt: string;
  /** Seconds since the client's last command or transfer progress. */
  idleSeconds: number;
  transfer?: { command: string; path: string; bytes: number; seconds: number };
}

export function summarize(session: Session, now: number): SessionSummary {
  const t = session.transfer;
  return {
    id: session.id,
    ip: session.remoteAddress,
    port: session.remotePort,
    listener: session.listener.name,
    ...(session.user ? { user: session.user.name } : {}),
    tls: session.secure,
    connectedAt: new Date(session.openedAt).toISOString(),
    idleSeconds: Math.max(0, Math.floor((now - session.lastActive) / 1000)),
    ...(t ? { transfer: { command: t.command, path: t.path, bytes: t.bytes, seconds: Math.max(0, (now - t.startedAt) / 1000) } } : {}),
  };
}
