import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { Session } from '../session/session.js';
import type { ClientHello } from './client-hello.js';

/**
 * A binding scope: one per TLS control connection. It owns the TLS ticket key
 * of that connection (so every ticket, and every TLS 1.2 session id, issued on
 * the control connection or on a data connection that resumed one of them,
 * names its scope), the client address, and the control session (and through
 * it, the user once logged in).
 *
 * Tickets are encrypted with the scope's own key: a data connection handshakes
 * with the context of the scope its ticket names, after the rule allowed it,
 * so a ticket of another scope cannot even be decrypted there.
 */
export interface Scope {
  /** Hex of the 16-byte ticket key name. */
  readonly name: string;
  /** 48 bytes: key name, HMAC secret, AES key (Node's ticketKeys layout). */
  readonly ticketKeys: Buffer;
  readonly ip: string;
  sessionId: string | undefined;
  /** The live control session; undefined once it closed. */
  owner: Session | undefined;
  /** The user as last seen on the control session (kept after it closes). */
  lastUser: string | undefined;
  context: SecureContext | undefined;
  expires: number;
}

interface CachedSession {
  scope: Scope;
  data: Buffer;
  expires: number;
}

/**
 * Bounded bookkeeping of scopes and TLS 1.2 session-cache entries. Live scopes
 * are bounded by the number of control connections; closed ones and cache
 * entries expire after the ticket lifetime and are capped (oldest dropped).
 */
export class ScopeRegistry {
  private readonly byName = new Map<string, Scope>();
  private readonly bySession = new Map<string, Scope>();
  private readonly sessions = new Map<string, CachedSession>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly maxScopes = 10_000,
    private readonly maxCachedSessions = 10_000,
  ) {}

  create(ip: string): Scope {
    const ticketKeys = randomBytes(48);
    const scope: Scope = {
      name: ticketKeys.subarray(0, 16).toString('hex'),
      ticketKeys,
      ip,
      sessionId: undefined,
      owner: undefined,
      lastUser: undefined,
      context: undefined,
      expires: Date.now() + this.lifetimeMs,
    };
    this.byName.set(scope.name, scope);
    this.prune();
    return scope;
  }

  /** Attach a scope to the control session it was created for. */
  bind(scope: Scope, session: Session): void {
    scope.owner = session;
    scope.sessionId = session.id;
    this.bySession.set(session.id, scope);
  }

  forSession(session: Session): Scope | undefined {
    return this.bySession.get(session.id);
  }

  /** The control session closed: keep the scope (its tickets stay valid for same-user) but drop the live parts. */
  sessionClosed(sessionId: string): void {
    const scope = this.bySession.get(sessionId);
    if (!scope) return;
    this.bySession.delete(sessionId);
    scope.lastUser = this.userOf(scope);
    scope.owner = undefined;
    scope.context = undefined;
  }

  /** Forget a scope whose handshake never completed. */
  drop(scope: Scope): void {
    this.byName.delete(scope.name);
    if (scope.sessionId) this.bySession.delete(scope.sessionId);
  }

  userOf(scope: Scope): string | undefined {
    if (scope.owner) {
      const name = scope.owner.user?.name;
      if (name) scope.lastUser = name;
      return name;
    }
    return scope.lastUser;
  }

  /** A scope was used to resume: keep it (and LRU order) fresh. */
  touch(scope: Scope): void {
    scope.expires = Date.now() + this.lifetimeMs;
    if (this.byName.delete(scope.name)) this.byName.set(scope.name, scope);
  }

  /**
   * The scope whose session the ClientHello offers to resume, and how:
   * TLS 1.3 PSK identities and TLS 1.2 tickets start with the key name;
   * a TLS 1.2 session id is looked up in the session cache.
   */
  find(hello: ClientHello): { scope: Scope; via: 'ticket' | 'session-id' } | undefined {
    const now = Date.now();
    for (const t of [...hello.pskIdentities, ...(hello.ticket ? [hello.ticket] : [])]) {
      if (t.length < 16) continue;
      const scope = this.byName.get(t.subarray(0, 16).toString('hex'));
      if (scope && (scope.owner || scope.expires > now)) return { scope, via: 'ticket' };
    }
    if (hello.pskIdentities.length === 0 && !hello.ticket && hello.sessionId.length > 0) {
      const cached = this.sessions.get(hello.sessionId.toString('hex'));
      if (cached && cached.expires > now && (cached.scope.owner || cached.scope.expires > now)) return { scope: cached.scope, via: 'session-id' };
    }
    return undefined;
  }

  /** TLS 1.2 server-side session cache (session ids), bounded. */
  remember(scope: Scope, id: Buffer, data: Buffer): void {
    const key = id.toString('hex');
    this.sessions.delete(key);
    this.sessions.set(key, { scope, data, expires: Date.now() + this.lifetimeMs });
    while (this.sessions.size > this.maxCachedSessions) this.sessions.delete(this.sessions.keys().next().value!);
  }

  /** Session data for a resumption, only if it belongs to `scope`. */
  recall(scope: Scope, id: Buffer): Buffer | null {
    const cached = this.sessions.get(id.toString('hex'));
    if (!cached || cached.scope !== scope || cached.expires <= Date.now()) return null;
    return cached.data;
  }

  private prune(): void {
    const now = Date.now();
    for (const [name, scope] of this.byName) {
      if (this.byName.size <= this.maxScopes && scope.expires > now) break;
      if (scope.owner) continue;
      this.byName.delete(name);
    }
    for (const [key, cached] of this.sessions) {
      if (cached.expires > now) break;
      this.sessions.delete(key);
    }
  }
}
