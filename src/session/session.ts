import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { User } from '../auth/types.js';
import { normalizeIp } from '../data/address.js';
import type { Actor } from '../observe/events.js';
import type { ListenerInfo, ServerContext } from '../server/context.js';
import type { Storage, VirtualPath } from '../storage/types.js';
import { ROOT, resolveVirtual } from '../storage/vpath.js';
import { DataSetup } from './data-setup.js';
import { dispatch } from './dispatcher.js';
import { LineReader } from './line-reader.js';
import { formatReply, reply, type Reply } from './reply.js';

export type SessionState = 'need-user' | 'need-pass' | 'ready' | 'closing';

/** The transfer slot: at most one transfer per session at a time. */
export interface ActiveTransfer {
  command: string;
  path: string;
  startedAt: number;
  bytes: number;
  controller: AbortController;
  done: Promise<void>;
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

const DEFAULT_MLST_FACTS = ['type', 'size', 'modify', 'perm', 'unique', 'unix.mode'];

const HTTP_REQUEST = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|CONNECT|PATCH|TRACE) \S+ HTTP\/\d/;

/** Lines waiting their turn; past this the socket is paused (backpressure). */
const MAX_QUEUED_LINES = 64;

/**
 * One control connection. Owns the state machine (need-user → need-pass →
 * ready), the command queue (strictly in order, even when pipelined), the
 * transfer slot, and the only path to the socket: `send`.
 */
export class Session {
  readonly id = newSessionId();
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
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
  mlstFacts = new Set(DEFAULT_MLST_FACTS);
  /** Control connection protected by TLS (AUTH TLS done, or implicit listener). */
  secure = false;
  protection: 'C' | 'P' = 'C';
  pbszSeen = false;
  transfer: ActiveTransfer | undefined;
  readonly data: DataSetup;

  private socket: Duplex;
  private readonly reader: LineReader;
  /** Lines waiting their turn; null marks an over-long line, answered 500 in its place. */
  private readonly queue: Array<string | null> = [];
  private pumping = false;
  private oversizeLines = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private loginTimer: NodeJS.Timeout | undefined;
  private closeReason = 'client closed';

  constructor(
    readonly server: ServerContext,
    readonly listener: ListenerInfo,
    socket: Duplex & { remoteAddress?: string; remotePort?: number; localAddress?: string },
  ) {
    this.socket = socket;
    this.remoteAddress = normalizeIp(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = normalizeIp(socket.localAddress);
    this.data = new DataSetup(this);
    this.reader = new LineReader(server.config.limits.max_line_length, {
      line: (text) => this.onLine(text),
      overflow: () => this.onOverflow(),
    });
    this.attach(socket);
    this.loginTimer = setTimeout(() => this.timeout('login'), server.config.timeouts.login * 1000);
    this.loginTimer.unref();
    this.touch();
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
    this.queue.length = 0;
    this.socket = next;
    this.attach(next);
  }

  /** Stop reading and hand the raw socket over (for the TLS upgrade). */
  takeSocket(): Duplex {
    this.detach(this.socket);
    this.reader.reset();
    this.queue.length = 0;
    return this.socket;
  }

  private readonly onData = (chunk: Buffer) => this.reader.push(chunk);
  private readonly onEnd = () => this.close('client closed');
  private readonly onError = (e: Error) => this.close(`socket error: ${(e as NodeJS.ErrnoException).code ?? e.message}`);

  private attach(s: Duplex): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onError);
  }

  private detach(s: Duplex): void {
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onEnd);
    s.off('error', this.onError);
  }

  loggedIn(user: User, storage: Storage): void {
    this.user = user;
    this.storage = storage;
    this.pendingUser = undefined;
    this.state = 'ready';
    this.cwd = ROOT;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
  }

  /** REIN: back to the greeting state, keeping the (possibly TLS) transport. */
  reinitialize(): void {
    this.data.reset();
    this.user = undefined;
    this.storage = undefined;
    this.pendingUser = undefined;
    this.state = 'need-user';
    this.cwd = ROOT;
    this.transferType = 'A';
    this.restOffset = 0;
    this.renameFrom = undefined;
    this.epsvAll = false;
    this.mlstFacts = new Set(DEFAULT_MLST_FACTS);
    this.failedLogins = 0;
    if (!this.loginTimer) {
      this.loginTimer = setTimeout(() => this.timeout('login'), this.server.config.timeouts.login * 1000);
      this.loginTimer.unref();
    }
  }

  private onLine(text: string): void {
    if (this.closed) return;
    if (this.state !== 'ready' && HTTP_REQUEST.test(text)) {
      // A web client or scanner, not an FTP client: no reply is useful, one log line is.
      this.server.events.emit('security', { ...this.actor, event: 'http-request', detail: text.slice(0, 64) });
      this.close('http request on the FTP port', true);
      return;
    }
    const verb = text.trimStart().split(' ', 1)[0]!.toUpperCase();
    if (this.transfer && this.server.commands.get(verb)?.duringTransfer) {
      this.run(text);
      return;
    }
    this.queue.push(text);
    if (this.queue.length >= MAX_QUEUED_LINES) (this.socket as { pause?: () => void }).pause?.();
    void this.pump();
  }

  private onOverflow(): void {
    this.oversizeLines++;
    this.server.events.emit('security', { ...this.actor, event: 'line-too-long', detail: `limit ${this.server.config.limits.max_line_length} bytes` });
    if (this.oversizeLines >= this.server.config.limits.max_oversize_lines) {
      this.send(reply(421, 'Too many over-long command lines; closing.'));
      this.close('line length abuse');
      return;
    }
    this.queue.push(null);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && !this.closed) {
        const line = this.queue.shift()!;
        if (this.queue.length < MAX_QUEUED_LINES / 2) (this.socket as { resume?: () => void }).resume?.();
        if (line === null) {
          this.send(reply(500, 'Command line too long.'));
          continue;
        }
        await this.run(line);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async run(line: string): Promise<void> {
    this.touch();
    try {
      await dispatch(this, line);
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
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => this.onIdle(), this.server.config.timeouts.idle * 1000);
      this.idleTimer.unref();
    }
  }

  private onIdle(): void {
    if (this.transfer) {
      this.touch();
      return;
    }
    this.timeout('idle');
  }

  private timeout(kind: 'login' | 'idle'): void {
    if (this.closed) return;
    this.server.events.emit('security', { ...this.actor, event: `${kind}-timeout` });
    this.send(reply(421, kind === 'login' ? 'Login timeout; closing.' : 'Idle timeout; closing.'));
    this.close(`${kind} timeout`);
  }

  /** End the session: abort the transfer, drop data setups, flush and close the socket. */
  close(reason: string, immediate = false): void {
    if (this.closed) return;
    this.state = 'closing';
    this.closeReason = reason;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.transfer?.controller.abort();
    this.data.reset();
    this.queue.length = 0;
    const s = this.socket;
    if (immediate) s.destroy();
    else if (!s.destroyed) {
      s.end();
      // A client that never reads its replies must not hold the socket open.
      setTimeout(() => s.destroy(), 2000).unref();
    }
    this.server.events.emit('session-close', {
      ...this.actor,
      reason: this.closeReason,
      durationMs: Date.now() - this.openedAt,
    });
  }
}
