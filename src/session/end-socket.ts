import type { Duplex } from 'node:stream';

/**
 * Flush what was written and close, but destroy the socket if it is still
 * there after `graceMs`: a client that never reads must not hold it open. The
 * timer goes as soon as the socket does (it holds the socket, and through it
 * whatever the socket's listeners hold).
 */
export function endSocket(socket: Duplex, graceMs: number): void {
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), graceMs).unref();
  socket.once('close', () => clearTimeout(timer));
}
