import { constants, randomBytes } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { CommandSpec } from '../commands/types.js';
import { tlsCommands, wrapLoginCommand } from '../commands/tls.js';
import type { MoatConfig } from '../config/schema.js';
import { normalizeIp } from '../data/address.js';
import type { Admission } from '../guard/guard.js';
import type { MoatEvents } from '../observe/events.js';
import type { ListenerInfo } from '../server/context.js';
import type { MoatServer, ServerParts } from '../server/server.js';
import { FtpError } from '../session/reply.js';
import type { Session } from '../session/session.js';
import { ScopeRegistry, type Scope } from './binding.js';
import { CertError, ensureSelfSigned, loadCertMaterial, type CertMaterial } from './certs.js';
import type { ClientHello } from './client-hello.js';
import { HandshakeError, serverHandshake, type HandshakeChoice } from './handshake.js';
import { TlsPolicies } from './policy.js';

/** TLS 1.3 suites first, then TLS 1.2 AEAD suites with forward secrecy only. */
export const DEFAULT_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

/** How long an issued TLS session (ticket or id) may be resumed. */
const SESSION_LIFETIME_S = 2 * 60 * 60;

/** Longest wait for a sibling control connection (same client, shared session cache) to finish its login. */
const LOGIN_WAIT_MS = 3000;

/** The admission handed to the session of an implicit-TLS connection: the raw socket releases the real one. */
const HELD_BY_RAW_SOCKET: Admission = { ok: true, release() {} };

export type TlsLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface TlsSetupOptions {
  /** Generate (once) and use a self-signed certificate in <state_dir>/tls when none is configured. */
  selfSigned?: boolean;
  log?: TlsLog;
}

/**
 * Everything FTPS: certificate material (with reload), the TLS contexts, the
 * binding scopes, AUTH/PBSZ/PROT/CCC, the login gate, implicit listeners and
 * the data-channel hook. Plugs into MoatServer through `serverParts()` and
 * `attach()`.
 */
export class TlsLayer {
  readonly policies: TlsPolicies;
  readonly scopes = new ScopeRegistry(SESSION_LIFETIME_S * 1000);
  private material: CertMaterial;
  private events: MoatEvents | undefined;
  private watching = false;
  private settle: NodeJS.Timeout | undefined;
  private readonly log: TlsLog;

  private constructor(
    readonly config: MoatConfig,
    readonly certFile: string,
    readonly keyFile: string,
    material: CertMaterial,
    log: TlsLog | undefined,
    readonly generated: boolean,
    /** The certificate is Moat's own self-signed one in <state_dir>/tls. */
    readonly selfSigned: boolean,
  ) {
    this.policies = new TlsPolicies(config);
    this.material = material;
    this.log = log ?? (() => undefined);
  }

  /**
   * The TLS layer for a configuration, or undefined when TLS is not set up
   * (no certificate and no self-signed generation asked for).
   */
  static async create(config: MoatConfig, options: TlsSetupOptions = {}): Promise<TlsLayer | undefined> {
    let certFile = config.tls.cert;
    let keyFile = config.tls.key;
    let generated = false;
    if (!certFile) {
      if (!config.tls.generate_self_signed && !options.selfSigned) return undefined;
      const made = await ensureSelfSigned(config.state_dir);
      certFile = made.certFile;
      keyFile = made.keyFile;
      generated = made.created;
    }
    const material = await loadCertMaterial(certFile, keyFile);
    const layer = new TlsLayer(config, certFile, keyFile, material, options.log, generated, !config.tls.cert);
    layer.buildContext(randomBytes(48), material); // fails early on a key that does not match
    return layer;
  }

  get fingerprint(): string {
    return this.material.fingerprint;
  }

  get certificate(): CertMaterial {
    return this.material;
  }

  /** What MoatServer needs from us. */
  serverParts(): Pick<ServerParts, 'commands' | 'secureData' | 'wrapCommand' | 'dataTlsRequired'> {
    return {
      commands: tlsCommands(this),
      secureData: (session, socket) => this.secureData(session, socket),
      wrapCommand: (spec: CommandSpec) => wrapLoginCommand(this, spec),
      dataTlsRequired: (session) => this.dataTlsRequired(session),
    };
  }

  /** Wire into a listening server: events, scope cleanup, implicit listeners. Returns their addresses. */
  async attach(server: MoatServer): Promise<string[]> {
    this.listenTo(server.events);
    const before = new Set(server.addresses());
    if (this.policies.offered) {
      for (const address of this.config.tls.implicit_listen) {
        const info: ListenerInfo = { name: `${address} (implicit TLS)`, publicHost: '' };
        await server.bind(address, info, (raw) => this.acceptImplicit(server, raw, info));
      }
    }
    const implicit = server.addresses().filter((a) => !before.has(a));
    if (implicit.length) server.events.emit('listening', { addresses: implicit, implicitTls: true });
    return implicit;
  }

  private listenTo(events: MoatEvents): void {
    if (this.events === events) return;
    this.events = events;
    events.on('session-close', (e) => this.scopes.sessionClosed(e.sessionId));
  }

  // ---- contexts -------------------------------------------------------------

  private buildContext(ticketKeys: Buffer, material = this.material): SecureContext {
    const { tls } = this.config;
    return createSecureContext({
      cert: material.cert,
      key: material.key,
      minVersion: tls.min_version,
      maxVersion: 'TLSv1.3',
      ciphers: tls.ciphers || DEFAULT_CIPHERS,
      honorCipherOrder: true,
      ticketKeys,
      sessionTimeout: SESSION_LIFETIME_S,
      sessionIdContext: 'moat-ftps',
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    });
  }

  private contextOf(scope: Scope): SecureContext {
    scope.context ??= this.buildContext(scope.ticketKeys);
    return scope.context;
  }

  private choice(scope: Scope): HandshakeChoice {
    return {
      context: this.contextOf(scope),
      cache: {
        newSession: (id, data) => this.scopes.remember(scope, id, data),
        resumeSession: (id) => this.scopes.recall(scope, id),
      },
    };
  }

  private get handshakeMs(): number {
    return this.config.timeouts.tls_handshake * 1000;
  }

  // ---- certificates -----------------------------------------------------------

  /**
   * Re-read the certificate and key. New connections get the new certificate;
   * open sessions keep the context they started with, so nothing drops.
   * A broken pair is refused and the old one stays in use.
   */
  async reload(reason = 'reload'): Promise<boolean> {
    try {
      const next = await loadCertMaterial(this.certFile, this.keyFile);
      if (next.fingerprint === this.material.fingerprint && next.key.equals(this.material.key)) return false;
      this.buildContext(randomBytes(48), next);
      this.material = next;
      this.log('info', 'TLS certificate reloaded', { event: 'tls-cert-reloaded', reason, fingerprint: next.fingerprint, subject: next.subject });
      return true;
    } catch (error) {
      const message = String((error as Error).message ?? error);
      this.log('error', 'TLS certificate reload failed; keeping the current one', { event: 'tls-cert-reload-failed', reason, error: message });
      return false;
    }
  }

  /**
   * Reload when the certificate or key file changes (polling, so replaced
   * files are seen too), once both have been quiet for 2.5 polls: a renewal
   * that replaces the key and the certificate one after the other, seen in
   * two polls, is one reload of the new pair, not a failed one first.
   */
  watch(intervalMs = 2000): void {
    if (this.watching) return;
    this.watching = true;
    const onChange = (): void => {
      clearTimeout(this.settle);
      this.settle = setTimeout(() => void this.reload('file changed'), intervalMs * 2.5).unref();
    };
    watchFile(this.certFile, { interval: intervalMs, persistent: false }, onChange);
    watchFile(this.keyFile, { interval: intervalMs, persistent: false }, onChange);
  }

  close(): void {
    clearTimeout(this.settle);
    if (!this.watching) return;
    this.watching = false;
    unwatchFile(this.certFile);
    unwatchFile(this.keyFile);
  }

  // ---- control connections --------------------------------------------------------

  /** After "234": take the socket from the session, handshake, give the TLS socket back. */
  async upgradeControl(session: Session): Promise<void> {
    this.listenTo(session.server.events);
    const raw = session.takeSocket() as Socket;
    // Whatever the client sent after AUTH and before the handshake is discarded here, never executed.
    while (raw.read() !== null);
    const scope = this.scopes.create(session.remoteAddress);
    try {
      const tlsSocket = await serverHandshake(raw, this.handshakeMs, () => this.choice(scope));
      if (session.closed) {
        tlsSocket.destroy();
        this.scopes.drop(scope);
        return;
      }
      this.scopes.bind(scope, session);
      session.replaceSocket(tlsSocket);
      session.secure = true;
      session.pbszSeen = false;
      session.protection = 'C';
    } catch (error) {
      this.scopes.drop(scope);
      // Closed by us meanwhile (ban, timeout, shutdown): not the client's failed handshake, so no scored event.
      if (session.closed) return;
      const detail = error instanceof HandshakeError ? `${error.kind}: ${error.message}` : String(error);
      session.server.events.emit('security', { ...session.actor, event: 'tls-handshake-failed', detail: `AUTH TLS: ${detail}` });
      session.close(`TLS handshake failed (${error instanceof HandshakeError ? error.kind : 'error'})`, 'destroy');
    }
  }

  private acceptImplicit(server: MoatServer, raw: Socket, info: ListenerInfo): void {
    raw.on('error', () => raw.destroy());
    const ip = normalizeIp(raw.remoteAddress);
    // Limits, bans and allow/deny before any handshake work; a refused client gets no TLS at all.
    const admission = server.guard.admit(ip);
    if (!admission.ok) {
      raw.destroy();
      return;
    }
    raw.on('close', () => admission.release());
    const scope = this.scopes.create(ip);
    serverHandshake(raw, this.handshakeMs, () => this.choice(scope)).then(
      (tlsSocket) => {
        const session = server.accept(tlsSocket, info, true, HELD_BY_RAW_SOCKET);
        if (session) this.scopes.bind(scope, session);
        else this.scopes.drop(scope);
      },
      (error: unknown) => {
        this.scopes.drop(scope);
        const kind = error instanceof HandshakeError ? error.kind : 'error';
        const event = kind === 'not-tls' ? 'implicit-tls-plain-traffic' : 'tls-handshake-failed';
        server.events.emit('security', {
          sessionId: '-',
          ip,
          event,
          detail: `${info.name}: ${error instanceof Error ? error.message : String(error)}`,
        });
      },
    );
  }

  // ---- data connections ---------------------------------------------------------------

  dataTlsRequired(session: Session): boolean {
    return session.protection === 'C' && this.policies.data(session.user, session.secure) === 'required';
  }

  /**
   * PROT P data connection: the client must resume a TLS session Moat issued,
   * per `data_session`: same-user (a control connection of the same user from
   * the same address), same-connection (this control connection), off.
   */
  async secureData(session: Session, raw: Socket): Promise<Duplex> {
    const own = this.scopes.forSession(session);
    const rule = this.policies.dataSession(session.user);
    let refusal: string | undefined;
    const choose = async (hello: ClientHello): Promise<HandshakeChoice> => {
      if (!own) throw this.refuse('control connection has no TLS scope');
      if (rule === 'off') return this.choice(own);
      const found = this.scopes.find(hello);
      if (!found) throw this.refuse('fresh TLS session (no resumption of a Moat-issued session)');
      const { scope } = found;
      const ip = session.remoteAddress;
      if (normalizeIp(scope.ip) !== ip) throw this.refuse(`resumed session was issued to another address (${scope.ip})`);
      if (rule === 'same-connection' && scope !== own) throw this.refuse('resumed session belongs to another control connection');
      if (rule === 'same-user') {
        // A client that shares one session cache between connections (rclone) may offer the ticket
        // of a sibling control connection still logging in: wait (bounded) to learn its user.
        const owner = await this.settledUser(scope);
        if (!owner || owner !== session.user?.name) throw this.refuse(`resumed session belongs to ${owner ? 'another user' : 'a connection not logged in'}`);
      }
      this.scopes.touch(scope);
      return this.choice(scope);
    };
    let tlsSocket: TLSSocket;
    try {
      tlsSocket = await serverHandshake(raw, this.handshakeMs, async (hello) => {
        try {
          return await choose(hello);
        } catch (error) {
          if (error instanceof HandshakeError) refusal = error.message;
          throw error;
        }
      });
    } catch (error) {
      if (refusal) throw this.refused(session, refusal);
      throw new FtpError(425, "Can't open data connection: TLS handshake failed.", {
        cause: error,
        logReason: `data TLS handshake failed: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    if (rule !== 'off' && !tlsSocket.isSessionReused()) {
      tlsSocket.destroy();
      throw this.refused(session, 'TLS session was not resumed');
    }
    return tlsSocket;
  }

  /** The user of a scope; if its control connection is still logging in, wait a little for the outcome. */
  private async settledUser(scope: Scope): Promise<string | undefined> {
    const deadline = Date.now() + Math.min(this.handshakeMs || LOGIN_WAIT_MS, LOGIN_WAIT_MS);
    for (;;) {
      const user = this.scopes.userOf(scope);
      const owner = scope.owner;
      if (user || !owner || owner.closed || owner.state === 'ready' || Date.now() >= deadline) return user;
      // Unref'd: a data connection waiting here must not keep a stopping process alive.
      await new Promise((r) => setTimeout(r, 25).unref());
    }
  }

  private refuse(message: string): HandshakeError {
    return new HandshakeError('refused', message);
  }

  private refused(session: Session, detail: string): FtpError {
    session.server.events.emit('security', { ...session.actor, event: 'data-tls-session-refused', detail });
    return new FtpError(522, 'Data connection refused: it must resume the TLS session of your control connection.', {
      logReason: `data-tls-session-refused: ${detail}`,
    });
  }
}

/** Exposed for `moat cert` and the CLI. */
export { CertError };
