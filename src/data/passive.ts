import { createServer, type Server, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { sameHost } from './address.js';

export class PassiveUnavailable extends Error {}

/**
 * Reuse of listening ports. Binding is the costly part of a passive setup (the
 * kernel checks the port against every socket still bound to it, and a busy
 * port holds one in TIME_WAIT per recent transfer), so under load a port whose
 * listener got its connection keeps listening for `lingerMs` and the next PASV
 * takes it. Only while at least `minIdle` such ports linger, drawn at random
 * among them: which port a PASV gets stays hard to predict.
 */
export interface PortReuse {
  lingerMs: number;
  minIdle: number;
}

const REUSE: PortReuse = { lingerMs: 1000, minIdle: 16 };

/** A listening socket on one port of the range, reserved by at most one listener at a time. */
interface HeldPort {
  readonly server: Server;
  readonly port: number;
  readonly host: string;
  owner: PassiveListener | undefined;
  idleSince: number;
}

/**
 * The server-wide passive port range. Ports are picked at random (a sequential
 * pick lets one client predict and race another's data port), and the number of
 * listeners open at once is capped server-wide. A port whose connection
 * arrived lingers, still listening (see PortReuse); connections reaching it
 * while nobody reserved it are closed at once. A listener given up without a
 * connection (ABOR, timeout, a new PASV, the session ending) closes its port.
 */
export class PassivePorts {
  /** Ports held: bound (reserved or lingering), or null while being bound. */
  private readonly held = new Map<number, HeldPort | null>();
  /** Lingering ports by bound host. */
  private readonly idle = new Map<string, HeldPort[]>();
  private reserved = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly min: number,
    readonly max: number,
    private readonly maxListeners: number,
    private readonly reuse: PortReuse = REUSE,
  ) {}

  /** Listeners waiting for their connection. */
  get open(): number {
    return this.reserved;
  }

  /** Ports listening with nobody waiting on them (for tests and diagnostics). */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  async listen(host: string, options: PassiveOptions): Promise<PassiveListener> {
    if (this.closed) throw new PassiveUnavailable('server closing');
    if (this.reserved >= this.maxListeners) throw new PassiveUnavailable('passive listener cap reached');
    const idle = this.idle.get(host);
    if (idle && idle.length >= this.reuse.minIdle) return this.reserve(this.unlinger(idle[randomInt(idle.length)]!), options);
    const span = this.max - this.min + 1;
    // Up to 64 attempts on distinct random ports that we can have: a free one is
    // bound, a lingering one taken (a blind random pick can miss the one free
    // port of a small range, hence the walk to the next candidate).
    const tried = new Set<number>();
    for (let i = 0; i < 64; i++) {
      let port = this.min + randomInt(span);
      let steps = 0;
      while ((tried.has(port) || this.unavailable(port, host)) && steps++ < span) port = port === this.max ? this.min : port + 1;
      if (steps > span) break;
      tried.add(port);
      const lingering = this.held.get(port);
      if (lingering) return this.reserve(this.unlinger(lingering), options);
      this.held.set(port, null);
      let server: Server;
      try {
        server = await bind(host, port);
      } catch {
        this.held.delete(port);
        continue;
      }
      const held: HeldPort = { server, port, host, owner: undefined, idleSince: 0 };
      this.held.set(port, held);
      server.on('connection', (s) => {
        if (held.owner) held.owner.onConnection(s);
        else s.destroy();
      });
      server.on('error', () => {
        if (held.owner) held.owner.close();
        else this.drop(held);
      });
      if (this.closed) {
        this.drop(held);
        throw new PassiveUnavailable('server closing');
      }
      return this.reserve(held, options);
    }
    throw new PassiveUnavailable('no free passive port');
  }

  /** Close every lingering port and refuse new listeners (server shutdown; sessions close their own). */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const list of this.idle.values()) for (const held of [...list]) this.drop(held);
  }

  /** Being bound, reserved, or lingering on another host. */
  private unavailable(port: number, host: string): boolean {
    if (!this.held.has(port)) return false;
    const held = this.held.get(port);
    return !held || held.owner !== undefined || held.host !== host;
  }

  private reserve(held: HeldPort, options: PassiveOptions): PassiveListener {
    this.reserved++;
    const listener = new PassiveListener(held.port, options, (connected) => {
      this.reserved--;
      held.owner = undefined;
      if (connected && !this.closed) this.linger(held);
      else this.drop(held);
    });
    held.owner = listener;
    return listener;
  }

  private linger(held: HeldPort): void {
    held.idleSince = Date.now();
    let list = this.idle.get(held.host);
    if (!list) this.idle.set(held.host, (list = []));
    list.push(held);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(10, this.reuse.lingerMs / 2)).unref();
  }

  /** Takes a lingering port off its host's list (an emptied list goes). */
  private unlinger(held: HeldPort): HeldPort {
    const list = this.idle.get(held.host);
    const i = list?.indexOf(held) ?? -1;
    if (i < 0) return held;
    // Swap-remove: the order of a list drawn from at random does not matter.
    list![i] = list![list!.length - 1]!;
    list!.pop();
    if (!list!.length) this.idle.delete(held.host);
    return held;
  }

  private sweep(): void {
    const before = Date.now() - this.reuse.lingerMs;
    for (const list of [...this.idle.values()]) for (const held of list.filter((h) => h.idleSince <= before)) this.drop(held);
    if (this.idle.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Stop listening on the port and give it back to the range. */
  private drop(held: HeldPort): void {
    this.unlinger(held);
    if (held.server.listening) held.server.close();
    if (this.held.get(held.port) === held) this.held.delete(held.port);
  }
}

function bind(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: true, noDelay: true });
    server.once('error', reject);
    server.listen({ host, port, exclusive: true, backlog: 4 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export interface PassiveOptions {
  /** The control connection's peer: only this address may connect. */
  peerAddress: string;
  /** Whether to accept connections from any address (off by default). */
  allowForeign: boolean;
  timeoutMs: number;
  onForeign(remoteAddress: string): void;
  /** The client did not connect within `timeoutMs`. */
  onTimeout?(): void;
}

/**
 * One pending passive listener. It accepts exactly one connection from the
 * control connection's address, refuses (and reports) any other, and gives its
 * port back as soon as it has its connection, is replaced, or times out.
 */
export class PassiveListener {
  private socket: Socket | undefined;
  private waiter: { resolve(s: Socket): void; reject(e: Error): void } | undefined;
  private closed = false;
  /** The accepted socket was handed to a transfer, which now owns (and closes) it. */
  private taken = false;
  private readonly timer: NodeJS.Timeout;
  private released = false;

  constructor(
    readonly port: number,
    private readonly options: PassiveOptions,
    /** Gives the port back: to linger for the next PASV when `connected`, else to be closed. */
    private readonly release: (connected: boolean) => void,
  ) {
    this.timer = setTimeout(() => {
      if (!this.closed) options.onTimeout?.();
      this.fail(new Error('data connection timed out'));
    }, options.timeoutMs);
    this.timer.unref();
  }

  /** A connection reached the port while this listener holds it. */
  onConnection(s: Socket): void {
    s.on('error', () => s.destroy());
    if (this.socket || this.closed) {
      s.destroy();
      return;
    }
    if (s.remoteAddress === undefined) {
      // Reset by its client before the server accepted it: there is no address to judge or report, and
      // the client's own next connection may still come.
      s.destroy();
      return;
    }
    if (!this.options.allowForeign && !sameHost(s.remoteAddress, this.options.peerAddress)) {
      this.options.onForeign(s.remoteAddress);
      s.destroy();
      return;
    }
    this.socket = s;
    clearTimeout(this.timer);
    this.giveBack(true);
    if (this.waiter) {
      this.waiter.resolve(s);
      this.waiter = undefined;
    }
  }

  /** Whether the client's connection has arrived (and was not given up). */
  get arrived(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  /** The accepted data socket (waits for the client to connect). */
  accept(): Promise<Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    if (this.closed) return Promise.reject(new Error('passive listener closed'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private giveBack(connected: boolean): void {
    // Once only: by a second call the port may already be reserved by another listener.
    if (this.released) return;
    this.released = true;
    this.release(connected);
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.giveBack(false);
    this.waiter?.reject(error);
    this.waiter = undefined;
  }

  /** Close the listener and any connection it accepted but nobody used. */
  close(): void {
    if (this.socket && !this.taken) this.socket.destroy();
    this.fail(new Error('passive listener closed'));
  }

  /** Hand the socket over: from now on its owner closes it. */
  async take(): Promise<Socket> {
    const s = await this.accept();
    this.taken = true;
    this.closed = true;
    return s;
  }
}
