import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectActive } from '../data/active.js';
import type { PassiveListener } from '../data/passive.js';
import { FtpError } from './reply.js';
import type { Session } from './session.js';

/**
 * Hook that turns a plain data socket into what the transfer uses (TLS under
 * PROT P). Installed by the TLS layer; plain FTP uses the socket as it is.
 */
export type DataSecurer = (session: Session, socket: Socket) => Promise<Duplex>;

/**
 * The session's pending data connection: at most one passive listener or one
 * active target at a time. Each transfer consumes it; PASV/PORT replace it.
 */
export class DataSetup {
  private passive: PassiveListener | undefined;
  private active: { host: string; port: number } | undefined;

  constructor(private readonly session: Session) {}

  get ready(): boolean {
    return this.passive !== undefined || this.active !== undefined;
  }

  /** A passive data connection is there, waiting for the transfer to take it. */
  get arrived(): boolean {
    return this.passive?.arrived === true;
  }

  /**
   * A transfer without PASV/PORT is refused before anything happens: no 150,
   * no file created. Checked after the command's own checks (a missing file is
   * still a 550), right before its first effect.
   */
  requireReady(): void {
    if (!this.ready) throw new FtpError(425, 'Use PORT, EPRT, PASV or EPSV first.', { logReason: 'no PASV/PORT before the transfer' });
  }

  async preparePassive(bindHost: string): Promise<number> {
    this.reset();
    const s = this.session;
    this.refuseClear();
    const listener = await s.server.passive.listen(bindHost, {
      peerAddress: s.remoteAddress,
      allowForeign: false,
      timeoutMs: s.server.config.timeouts.data_connect * 1000,
      onForeign: (ip) =>
        s.server.events.emit('security', {
          ...s.actor,
          event: 'data-connection-refused',
          detail: `passive connection from foreign address ${ip}`,
          // After detail: the fail2ban filter (contrib/fail2ban) matches event and detail side by side.
          offender: ip,
        }),
      onTimeout: () => s.server.events.emit('security', { ...s.actor, event: 'data-connect-timeout', detail: 'passive' }),
    });
    if (s.closed) {
      listener.close();
      throw new FtpError(425, 'Session closing.');
    }
    this.passive = listener;
    return listener.port;
  }

  setActive(host: string, port: number): void {
    this.reset();
    this.refuseClear();
    this.active = { host, port };
  }

  /**
   * Open the data connection for a transfer; the setup is used up either way.
   * An abort (ABOR, the session ending) gives the passive port or the pending
   * active connection back at once instead of at the data_connect timeout.
   * `onArrived` runs once the TCP connection is there, before a TLS handshake.
   */
  async open(signal: AbortSignal, onArrived: () => void = () => undefined): Promise<Duplex> {
    const passive = this.passive;
    const active = this.active;
    this.passive = undefined;
    this.active = undefined;
    if (signal.aborted) {
      // An ABOR pipelined right behind the transfer command: no connection is waited for.
      passive?.close();
      throw new FtpError(426, 'Transfer aborted.', { logReason: 'aborted before the data connection' });
    }
    const s = this.session;
    let socket: Socket;
    const closePassive = () => passive?.close();
    signal.addEventListener('abort', closePassive, { once: true });
    try {
      if (passive) socket = await passive.take();
      else if (active) {
        socket = await connectActive(active.host, active.port, s.localAddress || undefined, s.server.config.timeouts.data_connect * 1000, signal);
      } else throw new FtpError(425, "Can't open data connection.", { logReason: 'data connection setup gone' });
    } catch (error) {
      passive?.close();
      if (error instanceof FtpError) throw error;
      if (active && /timed out/.test((error as Error).message)) {
        s.server.events.emit('security', { ...s.actor, event: 'data-connect-timeout', detail: `active ${active.host}:${active.port}` });
      }
      throw new FtpError(425, "Can't open data connection.", { cause: error, logReason: 'data connection failed' });
    } finally {
      signal.removeEventListener('abort', closePassive);
    }
    socket.resume();
    onArrived();
    if (s.protection === 'P') {
      if (!s.server.secureData) {
        socket.destroy();
        throw new FtpError(425, 'TLS is not available for data connections.');
      }
      return s.server.secureData(s, socket);
    }
    return socket;
  }

  /**
   * tls.data = required and PROT C: no data connection in clear (RFC 4217
   * reply 521). Checked when PASV/PORT prepare one and again before a
   * transfer's 150 (a client may switch to PROT C in between), so a refused
   * data connection is never accepted; the prepared one is dropped.
   */
  refuseClear(): void {
    if (this.session.protection === 'C' && this.session.server.dataTlsRequired?.(this.session)) {
      this.reset();
      throw new FtpError(521, 'Data connections must be encrypted: send PBSZ 0 and PROT P.', { logReason: 'PROT P required' });
    }
  }

  reset(): void {
    this.passive?.close();
    this.passive = undefined;
    this.active = undefined;
  }
}
