import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Client } from 'basic-ftp';
import { PASSWORD, type TestServer } from './server.js';

/** Writes `data` in uneven pieces (1 B to ~900 KiB), waiting for drain, then ends: reads on the other side never line up. */
export async function sendInPieces(socket: Socket, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; ) {
    const n = Math.min(data.length - at, 1000 + ((at * 7919) % 900_000));
    if (!socket.write(data.subarray(at, at + n))) await once(socket, 'drain');
    at += n;
  }
  socket.end();
}

/**
 * `STOR name` of `data` in two uploads, the second resuming at `at` (REST),
 * each sent in uneven pieces; asserts every reply on the way.
 */
export async function storeResumed(c: RawClient, name: string, data: Buffer, at: number): Promise<void> {
  for (const [from, to] of [
    [0, at],
    [at, data.length],
  ] as const) {
    if (from > 0) expectReply(await c.cmd(`REST ${from}`), 350);
    const socket = await epsvConnection(c);
    expectReply(await c.cmd(`STOR ${name}`), 150);
    await sendInPieces(socket, data.subarray(from, to));
    expectReply(await c.reply(), 226);
  }
}

/**
 * STOR `name` with `bytes` random bytes, past the server's max_upload_size:
 * 552 mid-stream, the session goes on, and nothing (temp file included) is
 * left in `root`.
 */
export async function storePastLimit(c: RawClient, root: string, name: string, bytes: number): Promise<void> {
  const data = await epsvConnection(c);
  expectReply(await c.cmd(`STOR ${name}`), 150);
  void sendInPieces(data, randomBytes(bytes)).catch(() => undefined);
  expectReply(await c.reply(), 552);
  data.destroy();
  expectReply(await c.cmd('NOOP'), 200);
  const left = (await readdir(root)).filter((entry) => entry.includes(name));
  if (left.length) throw new Error(`left behind after 552: ${left.join(', ')}`);
}

function expectReply(reply: string, code: number): void {
  if (!reply.startsWith(`${code} `)) throw new Error(`expected ${code}, got: ${reply}`);
}

/** A logged-in basic-ftp client; closed by the caller. */
export async function ftpClient(t: TestServer, user = 'alice', password = PASSWORD): Promise<Client> {
  const client = new Client(10_000);
  await client.access({ host: t.host, port: t.port, user, password });
  return client;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], options: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

export function ftpUrl(t: TestServer, path = '/'): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `ftp://${host}:${t.port}${path}`;
}

/** Raw control connection for protocol probes: send lines, read replies. */
export class RawClient<S extends Socket = Socket> {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;

  /** Any stream socket: plain here, TLS in the FTPS helpers (which extend this class). */
  protected constructor(readonly socket: S) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawClient> {
    const socket = connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connect, read the greeting, and log in. */
  static async loggedIn(port: number, user = 'alice', password = PASSWORD, host = '127.0.0.1', localAddress?: string): Promise<RawClient> {
    const c = await RawClient.connect(port, host, localAddress);
    const greeting = await c.reply();
    if (!greeting.startsWith('220')) throw new Error(`no greeting: ${greeting}`);
    await c.login(user, password);
    return c;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Read one complete reply (multi-line aware). Returns '' if the socket closed first. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = takeReply(this.buffer);
      if (r) {
        this.buffer = this.buffer.slice(r.length);
        return r.trimEnd();
      }
      if (this.closed) return '';
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; buffer: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async cmd(line: string): Promise<string> {
    this.write(line + '\r\n');
    return this.reply();
  }

  /** Run a data command (LIST, RETR, ...) over a fresh EPSV connection; returns the bytes received. */
  async fetch(command: string): Promise<Buffer> {
    return (await this.fetchWithReply(command)).data;
  }

  /** As `fetch`, with the final 226 reply (its text may carry a note, such as a truncation). */
  async fetchWithReply(command: string): Promise<{ data: Buffer; done: string }> {
    const port = passivePort(await this.cmd('EPSV'));
    const data = connect({ port, host: this.socket.remoteAddress! });
    const chunks: Buffer[] = [];
    data.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise((r) => data.once('close', r));
    const opening = await this.cmd(command);
    if (!opening.startsWith('150')) {
      data.destroy();
      throw new Error(`${command}: ${opening}`);
    }
    const done = await this.reply();
    if (!done.startsWith('226')) throw new Error(`${command}: ${done}`);
    await closed;
    return { data: Buffer.concat(chunks), done };
  }

  async login(user = 'alice', password = PASSWORD): Promise<void> {
    await this.cmd(`USER ${user}`);
    const r = await this.cmd(`PASS ${password}`);
    if (!r.startsWith('230')) throw new Error(`login failed: ${r}`);
  }

  /** Wait for the server to close the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

function takeReply(buf: string): string | undefined {
  let pos = 0;
  let first: string | undefined;
  for (;;) {
    const nl = buf.indexOf('\n', pos);
    if (nl < 0) return undefined;
    const line = buf.slice(pos, nl).replace(/\r$/, '');
    pos = nl + 1;
    if (first === undefined) {
      if (!/^\d{3}[ -]/.test(line)) return buf.slice(0, pos);
      first = line.slice(0, 3);
      if (line[3] === ' ') return buf.slice(0, pos);
    } else if (line.startsWith(first + ' ')) return buf.slice(0, pos);
  }
}

/** Logged in as alice with TYPE I: ready for binary transfers. */
export async function binaryClient(port: number): Promise<RawClient> {
  const c = await RawClient.loggedIn(port);
  const r = await c.cmd('TYPE I');
  if (!r.startsWith('200')) throw new Error(`TYPE I: ${r}`);
  return c;
}

/** EPSV, then a connection to the port it names; later errors are ignored (tests cut these short). */
export async function epsvConnection(c: RawClient): Promise<Socket> {
  const data = connect({ port: passivePort(await c.cmd('EPSV')), host: '127.0.0.1' });
  data.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    data.once('connect', resolve);
    data.once('error', reject);
  });
  return data;
}

/** Resolves when nothing listens on 127.0.0.1:port any more (the connection is refused). */
export async function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ port, host: '127.0.0.1' });
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Parse "227 Entering Passive Mode (h,h,h,h,p,p)" or "229 ... (|||port|)". */
export function passivePort(reply: string): number {
  const epsv = /\(\|\|\|(\d+)\|\)/.exec(reply);
  if (epsv) return Number(epsv[1]);
  const pasv = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(reply);
  if (!pasv) throw new Error(`not a passive reply: ${reply}`);
  return Number(pasv[5]) * 256 + Number(pasv[6]);
}
