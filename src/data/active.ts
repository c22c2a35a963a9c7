import { connect, type Socket } from 'node:net';

/** Open an active-mode (PORT/EPRT) data connection to the client. */
export function connectActive(
  host: string,
  port: number,
  localAddress: string | undefined,
  timeoutMs: number,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('active connection timed out'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeListener('error', onError);
      s.on('error', () => s.destroy());
      resolve(s);
    });
    const onError = (e: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    s.once('error', onError);
  });
}
