import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { scanClientHello, type ClientHello } from './client-hello.js';

export type HandshakeFailure = 'timeout' | 'not-tls' | 'malformed' | 'closed' | 'tls-error' | 'refused';

export class HandshakeError extends Error {
  override name = 'HandshakeError';
  constructor(
    readonly kind: HandshakeFailure,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The part of a `tls.Server` a server-side TLSSocket talks to: the session
 * cache events (TLS 1.2 session ids). One per socket, so the cache knows
 * which binding scope each session belongs to.
 */
function asFailure(error: unknown): HandshakeError {
  return error instanceof HandshakeError ? error : new HandshakeError('refused', String(error));
}

export interface SessionCacheHooks {
  newSession(id: Buffer, data: Buffer): void;
  resumeSession(id: Buffer): Buffer | null;
}

export interface HandshakeChoice {
  context: SecureContext;
  cache?: SessionCacheHooks;
}

function cacheProxy(hooks: SessionCacheHooks): object {
  return {
    listenerCount: (name: string) => (name === 'newSession' || name === 'resumeSession' ? 1 : 0),
    emit(name: string, ...args: unknown[]): boolean {
      if (name === 'newSession') {
        const [id, data, done] = args as [Buffer, Buffer, () => void];
        hooks.newSession(id, data);
        done();
        return true;
      }
      if (name === 'resumeSession') {
        const [id, done] = args as [Buffer, (err: Error | null, data: Buffer | null) => void];
        done(null, hooks.resumeSession(id));
        return true;
      }
      return false;
    },
  };
}

/**
 * Server side of a TLS handshake on an accepted TCP socket: read the
 * ClientHello (refusing anything that is not one), let `choose` pick the
 * context from it (or throw HandshakeError 'refused'), then run the handshake
 * with the bytes read so far, all within `timeoutMs`.
 *
 * `raw` must have no other 'data' listener; nothing it carried before is kept
 * except the ClientHello bytes read here.
 */
export function serverHandshake(
  raw: Socket,
  timeoutMs: number,
  choose: (hello: ClientHello) => HandshakeChoice | Promise<HandshakeChoice>,
): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    let settled = false;
    let buffered: Buffer = Buffer.alloc(0);
    let tlsSocket: TLSSocket | undefined;
    const timer = timeoutMs > 0 ? setTimeout(() => fail(new HandshakeError('timeout', 'TLS handshake timed out')), timeoutMs) : undefined;
    timer?.unref();

    const cleanupRaw = () => {
      raw.off('data', onData);
      raw.off('close', onClose);
      raw.off('end', onClose);
      raw.off('error', onError);
    };
    function fail(error: HandshakeError): void {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      cleanupRaw();
      tlsSocket?.destroy();
      raw.destroy();
      reject(error);
    }
    function onClose(): void {
      fail(new HandshakeError('closed', 'connection closed during the TLS handshake'));
    }
    function onError(e: Error): void {
      fail(new HandshakeError('closed', `socket error during the TLS handshake: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    }
    function onData(chunk: Buffer): void {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      const scan = scanClientHello(buffered);
      if (scan.kind === 'more') return;
      if (scan.kind === 'not-tls') return fail(new HandshakeError('not-tls', `not a TLS handshake (looks like ${scan.guess})`));
      if (scan.kind === 'malformed') return fail(new HandshakeError('malformed', `bad ClientHello: ${scan.reason}`));
      // Hold the client (it waits for our ServerHello) while the choice is made.
      raw.off('data', onData);
      raw.pause();
      let chosen: HandshakeChoice | Promise<HandshakeChoice>;
      try {
        chosen = choose(scan.hello);
      } catch (error) {
        return fail(asFailure(error));
      }
      Promise.resolve(chosen).then(
        (choice) => {
          if (settled) return;
          cleanupRaw();
          raw.unshift(buffered);
          start(choice);
        },
        (error: unknown) => fail(asFailure(error)),
      );
    }
    function start(choice: HandshakeChoice): void {
      const options: Record<string, unknown> = {
        isServer: true,
        secureContext: choice.context,
        requestCert: false,
        rejectUnauthorized: false,
      };
      if (choice.cache) options.server = cacheProxy(choice.cache);
      const s = new TLSSocket(raw, options as ConstructorParameters<typeof TLSSocket>[1]);
      tlsSocket = s;
      const onTlsError = (e: Error) => fail(new HandshakeError('tls-error', (e as NodeJS.ErrnoException).code ?? e.message));
      const onTlsClose = () => fail(new HandshakeError('closed', 'connection closed during the TLS handshake'));
      s.on('_tlsError', onTlsError);
      s.on('error', onTlsError);
      s.once('close', onTlsClose);
      s.once('secure', () => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        const swallow = () => undefined;
        const resolveOrFail = () => {
          s.off('error', swallow);
          if (!s.destroyed) return resolve(s);
          raw.destroy();
          reject(new HandshakeError('closed', 'connection closed right after the TLS handshake'));
        };
        s.off('_tlsError', onTlsError);
        s.off('error', onTlsError);
        s.off('close', onTlsClose);
        (s as unknown as { _releaseControl(): boolean })._releaseControl();
        s.on('error', swallow);
        // The wrapped TCP socket must report its end too (the server's registry listens on it).
        s.once('close', () => raw.destroy());
        // Let OpenSSL flush its TLS 1.3 session tickets before the first application byte (and a
        // possible immediate close_notify): ftplib fails its unwrap() if they arrive after it.
        setImmediate(resolveOrFail);
      });
    }

    raw.on('data', onData);
    raw.on('close', onClose);
    raw.on('end', onClose);
    raw.on('error', onError);
    raw.resume();
  });
}
