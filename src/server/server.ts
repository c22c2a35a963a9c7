import { mkdir, stat } from 'node:fs/promises';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { resolve as resolveHostPath } from 'node:path';
import type { UserStore } from '../auth/types.js';
import { buildCommandTable } from '../commands/index.js';
import { CommandTable } from '../commands/table.js';
import type { CommandSpec } from '../commands/types.js';
import { parseHostPort, parsePortRange, type MoatConfig } from '../config/schema.js';
import { PassivePorts } from '../data/passive.js';
import { sameHost } from '../data/address.js';
import { Guard, type Admission } from '../guard/guard.js';
import { MoatEvents } from '../observe/events.js';
import { reply, formatReply } from '../session/reply.js';
import { Session } from '../session/session.js';
import { localHomes } from '../storage/local.js';
import type { ListenerInfo, ServerContext, StorageFactory } from './context.js';
import type { DataSecurer } from '../session/data-setup.js';
import { endSocket } from '../session/end-socket.js';
import { summarize, type SessionSummary } from './who.js';

export interface ServerParts {
  config: MoatConfig;
  users: UserStore;
  /** Default: local folders under `config.root`, one home per user. */
  storage?: StorageFactory;
  events?: MoatEvents;
  /** Extra command families (TLS adds AUTH/PBSZ/PROT/CCC). */
  commands?: CommandSpec[];
  secureData?: DataSecurer;
  /** Decorates built-in commands (TLS wraps USER/PASS with its login gate). */
  wrapCommand?: (spec: CommandSpec) => CommandSpec;
  dataTlsRequired?: ServerContext['dataTlsRequired'];
}

/**
 * How often session deadlines (login and idle timeouts) are checked: a timeout
 * fires up to this late, which is nothing next to timeouts counted in seconds.
 */
const DEADLINE_SWEEP_MS = 1000;

/** Shared 'error' listener: a socket that fails before or without a session is just dropped. */
function destroySocket(this: Socket): void {
  this.destroy();
}

/** The server could not start: a listener or the served folder. The message says which and why. */
export class StartupError extends Error {}

const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'not an address of this machine',
};

async function prepareRoot(root: string): Promise<void> {
  try {
    await mkdir(root, { recursive: true });
    if (!(await stat(root)).isDirectory()) throw new Error('not a folder');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const why = e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'not a folder' : (e.code ?? e.message);
    throw new StartupError(`cannot serve ${root}: ${why}`, { cause: error });
  }
}

interface Bound {
  server: NetServer;
  info: ListenerInfo;
}

/**
 * Owns the listeners, the shared context and the registry of live sessions.
 * A failure inside one session is caught and ends only that session.
 */
export class MoatServer {
  readonly events: MoatEvents;
  readonly sessions = new Set<Session>();
  readonly context: ServerContext;
  readonly guard: Guard;
  private readonly bound: Bound[] = [];
  private closing = false;
  private listenCalled = false;
  /** One timer for the timeouts of every session, instead of a Timeout per session. */
  private sweeper: NodeJS.Timeout | undefined;

  constructor(parts: ServerParts) {
    const { config } = parts;
    this.events = parts.events ?? new MoatEvents();
    const range = parsePortRange(config.passive.ports)!;
    const root = resolveHostPath(config.root);
    this.guard = new Guard(config, this.events);
    const homes = localHomes(root, { sendfile: config.transfer.sendfile });
    // A new ban also ends the banned address's live sessions.
    this.guard.onBan = (ip) => {
      for (const s of this.sessions) {
        if (!sameHost(s.remoteAddress, ip)) continue;
        s.send(reply(421, 'Your address is temporarily banned.'));
        s.close('banned');
      }
    };
    this.context = {
      config,
      events: this.events,
      users: parts.users,
      storageFor: parts.storage ?? ((user) => homes(user.home)),
      passive: new PassivePorts(range.min, range.max, config.limits.max_passive_listeners),
      commands: wrapCommands(buildCommandTable(parts.commands), parts.wrapCommand),
      guard: this.guard,
      ...(parts.secureData ? { secureData: parts.secureData } : {}),
      ...(parts.dataTlsRequired ? { dataTlsRequired: parts.dataTlsRequired } : {}),
    };
  }

  get config(): MoatConfig {
    return this.context.config;
  }

  /**
   * Bind every configured listener; resolves to their "host:port" addresses.
   * All or nothing: when one cannot be bound (StartupError) the others are closed again.
   */
  async listen(): Promise<string[]> {
    // A second call would bind the same addresses, fail, and its clean-up would close the running server.
    if (this.listenCalled) throw new StartupError('listen() was already called on this server');
    // A closed server turns every client away (421): make a new one instead.
    if (this.closing) throw new StartupError('listen() after close(): create a new server');
    this.listenCalled = true;
    if (!this.context.config.root) throw new StartupError('root is not set');
    await prepareRoot(resolveHostPath(this.context.config.root));
    try {
      await this.guard.start();
      for (const l of this.context.config.listen) {
        const address = typeof l === 'string' ? l : l.address;
        const info: ListenerInfo = {
          name: address,
          publicHost: typeof l === 'string' ? '' : (l.public_host ?? ''),
        };
        await this.bind(address, info, (socket) => this.accept(socket, info));
      }
    } catch (error) {
      await this.close();
      throw error;
    }
    const addresses = this.addresses();
    this.events.emit('listening', { addresses });
    return addresses;
  }

  /** Bind one listener; used by the TLS layer for implicit-TLS listeners too. */
  async bind(address: string, info: ListenerInfo, onSocket: (s: Socket) => void): Promise<void> {
    const { host, port } = parseHostPort(address)!;
    // Half-open: a client that shuts down its sending side still gets the replies to what it sent.
    const server = createNetServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      try {
        onSocket(socket);
      } catch (error) {
        this.events.emit('server-error', { error, where: 'accept' });
        socket.destroy();
      }
    });
    await new Promise<void>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException): void => {
        const why = LISTEN_FAILURES[error.code ?? ''] ?? error.message;
        reject(new StartupError(`cannot listen on ${address}: ${why}`, { cause: error }));
      };
      server.once('error', failed);
      server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
        server.off('error', failed);
        resolve();
      });
    });
    // Once bound, a listener's error is logged; the server keeps its other listeners.
    server.on('error', (error) => this.events.emit('server-error', { error, where: `listener ${address}` }));
    this.bound.push({ server, info });
  }

  /** Start a session on an accepted (plain or already-TLS) control socket. */
  accept(
    socket: Socket | import('node:tls').TLSSocket,
    info: ListenerInfo,
    secure = false,
    admitted?: Admission,
  ): Session | undefined {
    socket.on('error', destroySocket);
    if (this.closing) {
      if (admitted?.ok) admitted.release();
      socket.end(formatReply(reply(421, 'Server shutting down.')));
      return undefined;
    }
    // Limits, allow/deny and bans: before any per-connection allocation and before the greeting.
    // Implicit-TLS listeners admit before the handshake and pass the admission on.
    const admission = admitted ?? this.guard.admit(socket.remoteAddress ?? '');
    if (!admission.ok) {
      socket.write(formatReply(reply(421, admission.text)));
      endSocket(socket, 1000);
      return undefined;
    }
    const session = new Session(this.context, info, socket);
    session.secure = secure;
    this.sessions.add(session);
    const release = (): void => {
      admission.release();
      this.sessions.delete(session);
    };
    // A transfer that outlives its control connection (the client left after its data connection
    // opened) still counts against the limits, and shutdown still finds it.
    socket.on('close', () => {
      if (session.transfer) void session.transfer.done.then(release);
      else release();
    });
    this.sweeper ??= setInterval(() => this.sweepDeadlines(), DEADLINE_SWEEP_MS).unref();
    session.start();
    return session;
  }

  private sweepDeadlines(): void {
    const now = Date.now();
    for (const s of this.sessions) s.checkDeadlines(now);
  }

  /** Who is connected and what they are doing, oldest session first (`moat who`). */
  who(): SessionSummary[] {
    const now = Date.now();
    return [...this.sessions].map((s) => summarize(s, now));
  }

  addresses(): string[] {
    return this.bound.map(({ server }) => {
      const a = server.address();
      if (a && typeof a === 'object') return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      return String(a);
    });
  }

  /** Stop accepting, tell every session we are going, and wait for the listeners to close. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.guard.stop();
    const transfers: Promise<void>[] = [];
    for (const s of this.sessions) {
      if (s.transfer) transfers.push(s.transfer.done);
      s.send(reply(421, 'Server shutting down.'));
      s.close('server shutdown', 'destroy');
    }
    // The aborted transfers remove their partial uploads and log their line; bounded, as a
    // storage that hangs must not hold the shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(transfers), new Promise((r) => (timer = setTimeout(r, 3000)))]);
    clearTimeout(timer);
    this.context.passive.close();
    await Promise.all(
      this.bound.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
          }),
      ),
    );
    this.bound.length = 0;
  }
}

function wrapCommands(table: CommandTable, wrap: ServerParts['wrapCommand']): CommandTable {
  return wrap ? new CommandTable(table.specs.map(wrap)) : table;
}
