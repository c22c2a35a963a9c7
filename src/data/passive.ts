import { createServer, type Server, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { sameHost } from './address.js';

export class PassiveUnavailable extends Error {}

/**
 * The server-wide passive port range. Ports are picked at random (a sequential
 * pick lets one client predict and race another's data port), and the number of
 * listeners open at once is capped server-wide.
 */
export class PassivePorts {
  private readonly inUse = new Set<number>();

  constructor(
    readonly min: number,
    readonly max: number,
    private readonly maxListeners: number,
  ) {}

  get open(): number {
    return this.inUse.size;
  }

  async listen(host: string, options: PassiveOptions): Promise<PassiveListener> {
    if (this.inUse.size >= this.maxListeners) throw new PassiveUnavailable('passive listener cap reached');
    const span = this.max - this.min + 1;
    // Up to 64 bind attempts on distinct random ports that we do not hold (a
    // blind random pick can miss the one free port of a small range).
    const tried = new Set<number>();
    for (let i = 0; i < 64 && this.inUse.size + tried.size < span; i++) {
      let port = this.min + randomInt(span);
      while (this.inUse.has(port) || tried.has(port)) port = port === this.max ? this.min : port + 1;
      tried.add(port);
      this.inUse.add(port);
      try {
        const server = await bind(host, port);
        return new PassiveListener(server, port, options, () => this.inUse.delete(port));
      } catch {
        this.inUse.delete(port);
      }
    }
    throw new PassiveUnavailable('no free passive port');
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
 * control connection's address, refuses (and reports) any other, and closes as
 * soon as it has its connection, is replaced, or times out.
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
    private readonly server: Server,
    readonly port: number,
    private readonly options: PassiveOptions,
    private readonly release: () => void,
  ) {
    server.on('connection', (s) => this.onConnection(s));
    server.on('error', () => this.close());
    this.timer = setTimeout(() => {
      if (!this.closed) options.onTimeout?.();
      this.fail(new Error('data connection timed out'));
    }, options.timeoutMs);
    this.timer.unref();
  }

  private onConnection(s: Socket): void {
    s.on('error', () => s.destroy());
    if (this.socket || this.closed) {
      s.destroy();
      return;
    }
    if (!this.options.allowForeign && !sameHost(s.remoteAddress, this.options.peerAddress)) {
      this.options.onForeign(s.remoteAddress ?? '');
      s.destroy();
      return;
    }
    this.socket = s;
    clearTimeout(this.timer);
    this.stopListening();
    if (this.waiter) {
      this.waiter.resolve(s);
      this.waiter = undefined;
    }
  }

  /** The accepted data socket (waits for the client to connect). */
  accept(): Promise<Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    if (this.closed) return Promise.reject(new Error('passive listener closed'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private stopListening(): void {
    if (this.server.listening) this.server.close();
    // Once only: by a second call the port may already be reserved by another listener.
    if (this.released) return;
    this.released = true;
    this.release();
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.stopListening();
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
