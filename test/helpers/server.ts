import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileUserStore } from '../../src/auth/file-store.js';
import { validateConfig, merge } from '../../src/config/load.js';
import type { MoatEventMap } from '../../src/observe/events.js';
import { MoatServer, type ServerParts } from '../../src/server/server.js';

export interface TestServer {
  server: MoatServer;
  /** Host folder served as the root. */
  root: string;
  dir: string;
  port: number;
  host: string;
  users: FileUserStore;
  /** Every event the server emitted, in order. */
  events: Array<{ name: string; payload: unknown }>;
  eventsNamed<K extends keyof MoatEventMap>(name: K): MoatEventMap[K][];
  close(): Promise<void>;
}

export const PASSWORD = 'correct horse battery';

/** A passive range of its own for each server, so parallel test files never share ports. */
function passiveRange(): string {
  const base = 42000 + Math.floor(Math.random() * 390) * 20;
  return `${base}-${base + 19}`;
}

/**
 * Start a real server on 127.0.0.1 (or `host`), port 0, with a temp root and
 * users file holding `alice` (all permissions, home = root) and `bob`
 * (read-only, home "bob").
 */
export async function startServer(
  options: { config?: Record<string, unknown>; host?: string; parts?: Partial<ServerParts> } = {},
): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'moat-test-'));
  const root = join(dir, 'root');
  const host = options.host ?? '127.0.0.1';
  const config = validateConfig(
    merge(
      {
        listen: [host.includes(':') ? `[${host}]:0` : `${host}:0`],
        root,
        state_dir: join(dir, 'state'),
        users_file: join(dir, 'users.json'),
        log_level: 'silent',
        passive: { ports: passiveRange() },
        guard: { failed_login_delay_ms: 50 },
      },
      options.config ?? {},
    ),
  );
  const users = await FileUserStore.open(config.users_file);
  await users.add('alice', PASSWORD, { home: '.', permissions: 'elradfmwMT' });
  await users.add('bob', PASSWORD, { home: 'bob', permissions: 'elr' });
  await users.save();
  const server = new MoatServer({ config, users, ...options.parts });
  const events: TestServer['events'] = [];
  const emit = server.events.emit.bind(server.events);
  server.events.emit = ((name: string, payload: unknown) => {
    events.push({ name, payload });
    return emit(name as never, payload as never);
  }) as typeof server.events.emit;
  const [address] = await server.listen();
  const port = Number(address!.slice(address!.lastIndexOf(':') + 1));
  return {
    server,
    root,
    dir,
    port,
    host,
    users,
    events,
    eventsNamed: (name) => events.filter((e) => e.name === name).map((e) => e.payload) as never,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A server for one test: `fn` runs against it, and it is closed whatever happens. */
export async function withServer(options: Parameters<typeof startServer>[0], fn: (t: TestServer) => Promise<void>): Promise<void> {
  const t = await startServer(options);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}
