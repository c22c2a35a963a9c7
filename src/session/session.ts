import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { User } from '../auth/types.js';
import { normalizeIp } from '../data/address.js';
import type { Actor } from '../observe/events.js';
import type { ListenerInfo, ServerContext } from '../server/context.js';
import type { Storage, VirtualPath } from '../storage/types.js';
import { ROOT, resolveVirtual } from '../storage/vpath.js';
import { DataSetup } from './data-setup.js';
import { dispatch, verbOf } from './dispatcher.js';
import { endSocket } from './end-socket.js';
import { LineReader, type LineSink } from './line-reader.js';
import { formatReply, reply, type Reply } from './reply.js';
import { SessionEnded } from './transfer.js';

export type SessionState = 'need-user' | 'need-pass' | 'ready' | 'closing';

/** The transfer slot: at most one transfer per session at a time. */
export interface ActiveTransfer {
  command: string;
  path: string;
  startedAt: number;
  bytes: number;
  controller: AbortController;
  done: Promise<void>;
  /** The data connection is open: bytes may be moving. */
  connected: boolean;
}

/** Session ids are 48 random bits, drawn from a pool: one getrandom call per 512 connections. */
const ID_BYTES = 6;
let idPool = Buffer.alloc(0);
let idOffset = 0;
function newSessionId(): string {
  if (idOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 512);
    idOffset = 0;
  }
  idOffset += ID_BYTES;
  return idPool.toString('hex', idOffset - ID_BYTES, idOffset);
}

/** Shared by every session until OPTS MLST gives one its own set (sets are replaced, never changed). */
const DEFAULT_MLST_FACTS: ReadonlySet<string> = new Set(['type', 'size', 'modify', 'perm', 'unique', 'unix.mode']);

/** The first byte of a TLS handshake record (a ClientHello), then the major version 3. */
const TLS_HANDSHAKE_RECORD = 0x16;

const HTTP_REQUEST = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|CONNECT|PATCH|TRACE) \S+ HTTP\/\d/;

/** Lines waiting their turn; past this the socket is paused (backpressure). */
const MAX_QUEUED_LINES = 64;

/** A queued line whose bytes were not UTF-8: refused (501) in its turn. */
class NotUtf8 {
  constructor(readonly text: string) {}
}

/**
 * The session reading each socket. The socket listeners are static methods
 * that look their session up here: an idle server holds thousands of
 * sessions, and closures made per session would cost far more than an entry.
 */
const owners = new WeakMap<Duplex, Session>();

/**
 * One control connection. Owns the state machine (need-user → need-pass →
 * ready), the command queue (strictly in order, even when pipelined), the
 * transfer slot, and the only path to the socket: `send`.
 */
export class Session implements LineSink {
  readonly id = newSessionId();
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly openedAt = Date.now();

  state: SessionState = 'need-user';
  pendingUser: string | undefined;
  user: User | undefined;
  storage: Storage | undefined;
  cwd: VirtualPath = ROOT;
  transferType: 'A' | 'I' = 'A';
  restOffset = 0;
  renameFrom: VirtualPath | undefined;
  epsvAll = false;
  failedLogins = 0;
  mlstFacts = DEFAULT_MLST_FACTS;
  /** Control connection protected by TLS (AUTH TLS done, or implicit listener). */
  secure = false;
  protection: 'C' | 'P' = 'C';
  pbszSeen = false;
  transfer: ActiveTransfer | undefined;

  private socket: Duplex;
  #localAddress: string | undefined;
  /** Made on first use: most sessions sit idle and never open a data connection. */
  private setup: DataSetup | undefined;
  private readonly reader: LineReader;
  /**
   * Lines waiting their turn; null marks an over-long line, answered 500 in its
   * place. Dropped once drained: an emptied array keeps its backing store.
   */
  private queue: Array<string | NotUtf8 | null> | undefined;
  private pumping = false;
  /** The client half-closed: no more lines come; the queued ones are answered, then the session ends. */
  private inputEnded = false;
  private oversizeLines = 0;
  /**
   * When the login and idle timeouts fire, in ms since the epoch (login: 0
   * once logged in). Deadlines, not a Timeout each: the server checks them
   * all on one coarse timer.
   */
  private loginDeadline = 0;
  /** When the client last did something (a command, progress of a transfer): the idle clock, and `moat who`. */
  lastActive = 0;

  constructor(
    readonly server: ServerContext,
    readonly listener: ListenerInfo,
    socket: Duplex & { remoteAddress?: string; remotePort?: number },
  ) {
    this.socket = socket;
    this.remoteAddress = normalizeIp(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.reader = new LineReader(server.config.limits.max_line_length, this);
    this.attach(socket);
    this.startLoginClock();
    this.touch();
  }

  /**
   * Our address on the control connection, read on first use: a getsockname per
   * connection that most sessions (log in, send a file, leave) would never need
   * before their first PASV or PORT.
   */
  get localAddress(): string {
    this.#localAddress ??= normalizeIp((this.socket as { localAddress?: string }).localAddress);
    return this.#localAddress;
  }

  /** Whether a PASV/PORT is waiting for a transfer (without creating the setup to ask). */
  get dataPrepared(): boolean {
    return this.setup?.ready ?? false;
  }

  /** Drop a pending PASV/PORT, if any. */
  dropDataSetup(): void {
    this.setup?.reset();
  }

  /** The pending data connection (PASV/PORT), consumed by the next transfer. */
  get data(): DataSetup {
    return (this.setup ??= new DataSetup(this));
  }

  get actor(): Actor {
    return { sessionId: this.id, ip: this.remoteAddress, user: this.user?.name ?? this.pendingUser };
  }

  get closed(): boolean {
    return this.state === 'closing';
  }

  start(): void {
    this.server.events.emit('session-open', {
      ...this.actor,
      port: this.remotePort,
      listener: this.listener.name,
      secure: this.secure,
    });
    this.send(reply(220, this.server.config.banner));
  }

  /** The reply writer: the one place bytes reach the control socket. */
  send(r: Reply): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(formatReply(r));
  }

  resolve(arg: string): VirtualPath {
    return resolveVirtual(this.cwd, arg);
  }

  /** Swap the transport under the session (AUTH TLS): pre-swap buffered input is dropped. */
  replaceSocket(next: Duplex): void {
    this.detach(this.socket);
    this.reader.reset();
    this.queue = undefined;
    this.socket = next;
    this.attach(next);
  }

  /** Stop reading and hand the raw socket over (for the TLS upgrade). */
  takeSocket(): Duplex {
    this.detach(this.socket);
    this.reader.reset();
    this.queue = undefined;
    return this.socket;
  }

  private static onData(this: Duplex, chunk: Buffer): void {
    const session = owners.get(this);
    if (!session) return;
    if (chunk[0] === TLS_HANDSHAKE_RECORD && session.looksLikeTlsHandshake(chunk)) return;
    session.reader.push(chunk);
  }

  /**
   * A TLS ClientHello where the client should have sent its first command: an
   * implicit-FTPS client pointed at the plain or explicit port. Read as lines,
   * its bytes were a handful of malformed commands, scored toward a ban for a
   * client that is only misconfigured; it is closed with one unscored line.
   */
  private looksLikeTlsHandshake(chunk: Buffer): boolean {
    if (this.secure || this.state !== 'need-user' || this.reader.pending > 0 || (chunk.length > 1 && chunk[1] !== 3)) return false;
    this.server.events.emit('security', {
      ...this.actor,
      event: 'tls-on-plain-port',
      detail: 'a TLS handshake instead of a command: an implicit-FTPS client? (use AUTH TLS here, or the implicit port)',
    });
    this.close('TLS handshake on a plain FTP port', 'destroy');
    return true;
  }

  private static onEnd(this: Duplex): void {
    owners.get(this)?.inputEnd();
  }

  private static onClose(this: Duplex): void {
    owners.get(this)?.clientGone();
  }

  /**
   * The client sent FIN: it may have closed the connection or only its sending
   * side (`printf 'USER…\r\nQUIT\r\n' | nc -N`, a client that shuts down after
   * QUIT). Either way the lines it sent are run and answered in order, as
   * vsftpd and pure-ftpd do, and then the session ends. A transfer still
   * waiting for its data connection is given up (nobody is likely to connect
   * now); one already moving bytes is let finish (see clientGone).
   */
  private inputEnd(): void {
    if (this.closed) return;
    this.inputEnded = true;
    this.abandonWaitingTransfer('client closed');
    this.endWhenAnswered();
  }

  private endWhenAnswered(): void {
    if (this.closed || this.pumping || this.queue?.length) return; // pump() calls again once drained
    const t = this.transfer;
    if (t) void t.done.then(() => this.endWhenAnswered());
    else this.close('client closed');
  }

  /**
   * The connection is gone: nothing more can be answered. A transfer still
   * running is let finish first (bounded by the stall watchdog): a client that
   * closes the data connection and leaves at once has sent its whole upload,
   * which is kept. A reset (onError) ends everything at once.
   */
  private clientGone(): void {
    const t = this.transfer;
    // Still waiting for the data connection: nothing was moved, and nobody will connect now.
    if (!t?.connected || this.closed) {
      this.close('client closed');
      return;
    }
    void t.done.then(() => this.close('client closed'));
  }

  private static onError(this: Duplex, e: Error): void {
    owners.get(this)?.close(`socket error: ${(e as NodeJS.ErrnoException).code ?? e.message}`);
  }

  private attach(s: Duplex): void {
    owners.set(s, this);
    s.on('data', Session.onData);
    s.on('end', Session.onEnd);
    s.on('close', Session.onClose);
    s.on('error', Session.onError);
  }

  private detach(s: Duplex): void {
    s.off('data', Session.onData);
    s.off('end', Session.onEnd);
    s.off('close', Session.onClose);
    s.off('error', Session.onError);
    owners.delete(s);
  }

  loggedIn(user: User, storage: Storage): void {
    this.user = user;
    this.storage = storage;
    this.pendingUser = undefined;
    this.state = 'ready';
    this.cwd = ROOT;
    this.loginDeadline = 0;
  }

  /** REIN: back to the greeting state, keeping the (possibly TLS) transport. */
  reinitialize(): void {
    this.dropDataSetup();
    this.user = undefined;
    this.storage = undefined;
    this.pendingUser = undefined;
    this.state = 'need-user';
    this.cwd = ROOT;
    this.transferType = 'A';
    this.restOffset = 0;
    this.renameFrom = undefined;
    this.epsvAll = false;
    this.mlstFacts = DEFAULT_MLST_FACTS;
    this.failedLogins = 0;
    // Never restarts a login clock already running: REIN must not extend a login timeout.
    if (!this.loginDeadline) this.startLoginClock();
  }

  private startLoginClock(): void {
    this.loginDeadline = Date.now() + this.server.config.timeouts.login * 1000;
  }

  /** LineSink: a command line from the client. */
  onLine(text: string, utf8 = true): void {
    if (this.closed) return;
    if (this.state !== 'ready' && HTTP_REQUEST.test(text)) {
      // A web client or scanner, not an FTP client: no reply is useful, one log line is.
      this.server.events.emit('security', { ...this.actor, event: 'http-request', detail: text.slice(0, 64) });
      this.close('http request on the FTP port', 'destroy');
      return;
    }
    // Answered at once during a transfer (STAT, QUIT) only when no line is waiting ahead of it, so
    // replies keep the order of the commands; ABOR always, as it is there to stop the transfer.
    const verb = verbOf(text);
    if (this.transfer && this.server.commands.get(verb)?.duringTransfer && (verb === 'ABOR' || !this.queue?.length)) {
      void this.run(text, utf8);
      return;
    }
    const queue = (this.queue ??= []);
    queue.push(utf8 ? text : new NotUtf8(text));
    if (queue.length >= MAX_QUEUED_LINES) (this.socket as { pause?: () => void }).pause?.();
    void this.pump();
  }

  /** LineSink: a line over limits.max_line_length, already dropped. */
  onOverflow(): void {
    this.oversizeLines++;
    this.server.events.emit('security', { ...this.actor, event: 'line-too-long', detail: `limit ${this.server.config.limits.max_line_length} bytes` });
    if (this.oversizeLines >= this.server.config.limits.max_oversize_lines) {
      // The last one allowed is answered like the others, then the session ends (as max_login_attempts does).
      this.send(reply(500, 'Command line too long.'));
      this.send(reply(421, 'Too many over-long command lines; closing.'));
      this.close('line length abuse');
      return;
    }
    (this.queue ??= []).push(null);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue?.length && !this.closed) {
        const line = this.queue.shift()!;
        if (this.queue.length < MAX_QUEUED_LINES / 2) (this.socket as { resume?: () => void }).resume?.();
        if (line === null) {
          this.send(reply(500, 'Command line too long.'));
          continue;
        }
        if (line instanceof NotUtf8) await this.run(line.text, false);
        else await this.run(line);
      }
    } finally {
      this.pumping = false;
      if (this.queue?.length === 0) this.queue = undefined;
      if (this.inputEnded) this.endWhenAnswered();
    }
  }

  private async run(line: string, utf8 = true): Promise<void> {
    this.touch();
    try {
      await dispatch(this, line, utf8);
    } catch (error) {
      // dispatch turns every handler failure into a reply; reaching here is a bug in Moat.
      this.server.events.emit('session-error', { ...this.actor, error });
      this.send(reply(421, 'Internal error; closing.'));
      this.close('internal error');
    }
    this.touch();
  }

  /** Restart the idle clock (commands, and progress of a transfer). */
  touch(): void {
    if (this.closed) return;
    this.lastActive = Date.now();
  }

  /**
   * A transfer has just started (its 150 is out). If the client sent FIN while
   * the command was being prepared and its data connection is not there, the
   * transfer is given up at once, as `inputEnd` gives up one already waiting:
   * nobody will connect now, and its passive port, temp file and session would
   * otherwise be held for data_connect. An ABOR that the client sent behind
   * the transfer command, before the transfer existed, is taken now (ahead of
   * other queued lines, as ABOR is when the transfer runs): left in the queue it
   * would only run after the transfer it was sent to stop. A queued QUIT is
   * not: a client may pipeline its QUIT and connect afterwards (vsftpd reads it
   * after the transfer too).
   */
  transferStarted(): void {
    if (this.inputEnded && !this.data.arrived && this.abandonWaitingTransfer('client closed')) return;
    const at = this.queue?.findIndex((line) => typeof line === 'string' && verbOf(line) === 'ABOR') ?? -1;
    if (at < 0) return;
    const [abor] = this.queue!.splice(at, 1);
    void this.run(abor as string);
  }

  /**
   * Give up the transfer if it is still waiting for its data connection (the
   * client is leaving: nobody will connect). True when there was one.
   */
  abandonWaitingTransfer(reason: string): boolean {
    const t = this.transfer;
    if (!t || t.connected) return false;
    t.controller.abort(new SessionEnded(reason));
    return true;
  }

  /** Wait until the running transfer, if any, has sent its final reply. */
  async transferFinished(): Promise<void> {
    await this.transfer?.done;
  }

  /**
   * Abort the running transfer and wait until its final reply (426) is sent,
   * so whatever the caller answers next comes after it, in RFC 959 order.
   * False when no transfer was running.
   */
  async abortTransfer(): Promise<boolean> {
    const t = this.transfer;
    if (!t) return false;
    t.controller.abort();
    await t.done;
    return true;
  }

  /** Fire the login or idle timeout whose deadline has passed; the server calls this about once a second. */
  checkDeadlines(now: number): void {
    if (this.closed) return;
    const idle = this.server.config.timeouts.idle;
    if (this.loginDeadline && now >= this.loginDeadline) this.timeout('login');
    // 0: never idle out (timeouts.idle documents it).
    else if (idle > 0 && now - this.lastActive >= idle * 1000) {
      // A session with a transfer running is not idle (the stall watchdog guards the transfer).
      if (this.transfer) this.touch();
      else this.timeout('idle');
    }
  }

  private timeout(kind: 'login' | 'idle'): void {
    if (this.closed) return;
    this.server.events.emit('security', { ...this.actor, event: `${kind}-timeout` });
    this.send(reply(421, kind === 'login' ? 'Login timeout; closing.' : 'Idle timeout; closing.'));
    this.close(`${kind} timeout`);
  }

  /**
   * End the session: abort the transfer, drop data setups, close the socket.
   * `how`: 'end' flushes the replies, half-closes and waits (bounded) for the
   * client to close; 'close' (QUIT) closes as soon as the replies are with the
   * kernel. Either way the server closes first, as RFC 959 has it: the
   * TIME_WAIT entry then stays on the server, where it costs nothing, instead
   * of holding one of the client's ports for a minute, which exhausts a busy
   * client's ports (measured in docs/performance.md). 'destroy' drops the
   * socket at once.
   */
  close(reason: string, how: 'end' | 'close' | 'destroy' = 'end'): void {
    if (this.closed) return;
    this.state = 'closing';
    this.transfer?.controller.abort(new SessionEnded(reason));
    this.dropDataSetup();
    this.queue = undefined;
    const s = this.socket;
    // 'close' (QUIT): once the reply is with the kernel, close() sends it and then FIN, without a
    // shutdown() and a wait for the client's own FIN: a third less work for the short sessions of
    // a camera's login loop. TLS still ends with close_notify, and anything queued is flushed first.
    if (how === 'destroy' || (how === 'close' && s.writableLength === 0 && !this.secure)) s.destroy();
    else endSocket(s, 2000);
    this.server.events.emit('session-close', {
      ...this.actor,
      reason,
      durationMs: Date.now() - this.openedAt,
    });
  }
}
