import type { Duplex } from 'node:stream';
import type { TransferEvent } from '../observe/events.js';
import { PrematureClose } from '../data/copy.js';
import { toFtpError } from './errors.js';
import { FtpError, reply, type Reply } from './reply.js';
import type { Session } from './session.js';

export interface TransferJob {
  direction: TransferEvent['direction'];
  command: string;
  path: string;
  /** Text of the 150 reply. */
  opening: string;
  /** Move the bytes. Must honour `signal` and call `progress` as bytes move. */
  run(data: Duplex, signal: AbortSignal, progress: (bytes: number) => void): Promise<void>;
  /** Called when the transfer did not complete (undo a partial upload). */
  cleanup?(): Promise<void>;
  /** Replaces the 226 text on success. */
  done?: string;
}

class Stalled extends Error {}

/** The session ended under a running transfer: the abort reason names why (server shutdown, ban, ...). */
export class SessionEnded extends Error {}

/**
 * The one transfer runner: 150, data connection, bytes with a stall watchdog,
 * then exactly one of 226 / 425 / 426 / 4xx-5xx, and one event. The data
 * socket is always closed before the final reply, so the client never waits.
 */
export async function runTransfer(session: Session, job: TransferJob): Promise<void> {
  const started = Date.now();
  const controller = new AbortController();
  let bytes = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const transfer = { command: job.command, path: job.path, startedAt: started, bytes: 0, controller, done, connected: false };
  session.transfer = transfer;
  const stallMs = session.server.config.timeouts.stalled_transfer * 1000;
  let stall: NodeJS.Timeout | undefined;
  let data: Duplex | undefined;
  let outcome: { result: TransferEvent['result']; reason?: string; reply: Reply };

  try {
    session.data.requireReady();
    session.data.refuseClear();
    session.send(reply(150, job.opening));
    session.transferStarted();
    // Connected from the moment the client's TCP connection is there: a FIN on the control
    // connection during the data connection's TLS handshake lets the transfer go on.
    data = await openWithAbort(session, controller.signal, () => (transfer.connected = true));
    // Held for the socket's whole life: between the steps of a transfer nobody else may be listening.
    data.on('error', () => data?.destroy());
    if (stallMs > 0) {
      stall = setTimeout(() => controller.abort(new Stalled('no progress')), stallMs);
      stall.unref();
    }
    await job.run(data, controller.signal, (n) => {
      bytes += n;
      transfer.bytes = bytes;
      stall?.refresh();
      session.touch();
    });
    // An upload is done once committed: what happens to the data connection after that changes nothing.
    await closeData(data, controller.signal, job.direction !== 'upload');
    outcome = { result: 'ok', reply: reply(226, job.done ?? 'Transfer complete.') };
  } catch (error) {
    // The client reset or closed the data connection: its own error is a network one, while the
    // write that noticed fails with ERR_STREAM_DESTROYED, not a network error. (A copy that fails
    // for another reason destroys the socket too, without such an error: not a lost connection.)
    const lost = isNetworkError(data?.errored) || ((error as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_DESTROYED' && data?.destroyed === true);
    data?.destroy();
    await job.cleanup?.().catch(() => undefined);
    const reason = controller.signal.reason;
    if (reason instanceof Stalled) {
      session.server.events.emit('security', { ...session.actor, event: 'transfer-stalled', detail: job.path });
      outcome = { result: 'aborted', reason: 'stalled', reply: reply(426, 'Transfer timed out: no progress.') };
    } else if (reason instanceof SessionEnded) {
      outcome = { result: 'aborted', reason: `session ended: ${reason.message}`, reply: reply(426, 'Connection closed; transfer aborted.') };
    } else if (controller.signal.aborted) {
      outcome = { result: 'aborted', reason: 'aborted by client', reply: reply(426, 'Connection closed; transfer aborted.') };
    } else if (error instanceof FtpError && error.code === 425) {
      outcome = { result: 'failed', reason: error.logReason ?? error.text, reply: reply(425, error.text) };
    } else if (lost || isNetworkError(error)) {
      outcome = { result: 'aborted', reason: 'data connection lost', reply: reply(426, 'Data connection lost; transfer aborted.') };
    } else {
      const ftp = toFtpError(error);
      outcome = { result: 'failed', reason: ftp.logReason ?? ftp.text, reply: reply(ftp.code, ftp.text) };
    }
  } finally {
    if (stall) clearTimeout(stall);
    session.restOffset = 0;
  }
  const event: TransferEvent = {
    ...session.actor,
    direction: job.direction,
    command: job.command,
    path: job.path,
    bytes,
    durationMs: Date.now() - started,
    result: outcome.result,
    ...(outcome.reason ? { reason: outcome.reason } : {}),
  };
  session.server.events.emit(job.direction, event);
  session.transfer = undefined;
  // ABOR waits on `done` to answer after the 426, as RFC 959 orders the two replies.
  session.send(outcome.reply);
  finish();
}

function openWithAbort(session: Session, signal: AbortSignal, onArrived: () => void): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new FtpError(426, 'Transfer aborted.'));
    signal.addEventListener('abort', onAbort, { once: true });
    session.data.open(signal, onArrived).then(
      (d) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) {
          d.destroy();
          return;
        }
        resolve(d);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Finish our side and wait until the socket is gone, bounded, so no socket
 * leaks. With `strict` (we sent the bytes) it succeeds only if our last byte
 * got out: an abort, a stall or a reset while the tail was still being
 * flushed is a 426, not a 226.
 */
function closeData(data: Duplex, signal: AbortSignal, strict: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => data.destroy();
    const settle = () => {
      signal.removeEventListener('abort', onAbort);
      if (!strict) resolve();
      else if (signal.aborted) reject(signal.reason);
      else if (!data.writableFinished) reject(data.errored ?? new PrematureClose('data connection closed before the last byte was sent'));
      else resolve();
    };
    if (data.destroyed) return settle();
    data.once('close', settle);
    signal.addEventListener('abort', onAbort, { once: true });
    // Once our last byte (and FIN, or TLS close_notify) is out, the socket is done,
    // whether or not the client closes its side.
    if (data.writableFinished) data.destroy();
    else {
      data.once('finish', () => data.destroy());
      if (!data.writableEnded) data.end();
    }
  });
}

function isNetworkError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ETIMEDOUT';
}
