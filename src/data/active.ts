import { connect, type Socket } from 'node:net';

/** Open an active-mode (PORT/EPRT) data connection to the client. */
export function connectActive(
  host: string,
  port: number,
  localAddress: string | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress, noDelay: true });
    const fail = (e: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error('active connection timed out')), timeoutMs);
    const onAbort = () => fail(new Error('active connection aborted'));
    const onError = (e: Error) => fail(e);
    s.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.removeListener('error', onError);
      s.on('error', () => s.destroy());
      resolve(s);
    });
    s.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
