import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { merge, validateConfig } from '../../src/config/load.js';
import { TlsLayer } from '../../src/tls/layer.js';
import { RawClient } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';

export interface TlsTestServer extends TestServer {
  tls: TlsLayer;
  implicitPort: number;
  certFile: string;
  keyFile: string;
}

/** A throwaway self-signed certificate made with openssl in a temp dir. */
export function makeCert(dir = mkdtempSync(join(tmpdir(), 'moat-cert-')), cn = 'localhost'): { certFile: string; keyFile: string; dir: string } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { certFile, keyFile, dir };
}

/** startServer with TLS: explicit on the usual port, implicit on a second one. */
export async function startTlsServer(options: { config?: Record<string, unknown>; implicit?: boolean } = {}): Promise<TlsTestServer> {
  const { certFile, keyFile, dir: certDir } = makeCert();
  const config = merge(
    { tls: { cert: certFile, key: keyFile, implicit_listen: options.implicit === false ? [] : ['127.0.0.1:0'] } },
    options.config ?? {},
  );
  const forLayer = validateConfig(merge({ root: '/nonexistent', state_dir: join(tmpdir(), 'moat-unused') }, config));
  const layer = (await TlsLayer.create(forLayer))!;
  const t = await startServer({ config, parts: layer.serverParts() });
  const implicit = await layer.attach(t.server);
  const implicitPort = implicit.length ? Number(implicit[0]!.slice(implicit[0]!.lastIndexOf(':') + 1)) : 0;
  const close = t.close;
  return {
    ...t,
    tls: layer,
    implicitPort,
    certFile,
    keyFile,
    async close() {
      layer.close();
      await close();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}

/** Upgrade a RawClient's socket after "234": returns a RawClient-like line client over TLS. */
export class TlsLineClient extends RawClient<TLSSocket> {
  static async explicit(port: number, host = '127.0.0.1'): Promise<TlsLineClient> {
    const raw = await RawClient.connect(port, host);
    const hello = await raw.reply();
    if (!hello.startsWith('220')) throw new Error(hello);
    const r = await raw.cmd('AUTH TLS');
    if (!r.startsWith('234')) throw new Error(r);
    raw.socket.removeAllListeners('data');
    return TlsLineClient.wrap(raw.socket);
  }

  static async wrap(socket: import('node:net').Socket, session?: Buffer): Promise<TlsLineClient> {
    const s = tlsConnect({ socket, rejectUnauthorized: false, servername: 'localhost', ...(session ? { session } : {}) });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    return new TlsLineClient(s);
  }

  static async implicit(port: number): Promise<TlsLineClient> {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    const c = new TlsLineClient(s);
    const hello = await c.reply();
    if (!hello.startsWith('220')) throw new Error(hello);
    return c;
  }

  /** The latest TLS session (ticket) the server gave this connection. */
  async session(): Promise<Buffer> {
    for (let i = 0; i < 100 && !this.socket.getSession(); i++) await new Promise((r) => setTimeout(r, 10));
    return this.socket.getSession()!;
  }
}

/** Set per-user TLS overrides on a user of the test server's store (test-only access to its records). */
export function setUserTls(
  t: TestServer,
  name: string,
  fields: { tls_control?: string; tls_data?: string; tls_data_session?: string },
): void {
  const records = (t.users as unknown as { users: Map<string, Record<string, unknown>> }).users;
  Object.assign(records.get(name)!, fields);
}

export interface DataResult {
  first: string;
  final: string;
  data: string;
  reused: boolean;
  protocol: string | null;
}

/**
 * EPSV, connect, TLS-wrap the data connection (optionally resuming `session`),
 * send `command` on the control connection and collect both replies and the data.
 */
export async function tlsData(control: TlsLineClient, command: string, session?: Buffer, localAddress?: string): Promise<DataResult> {
  const epsv = await control.cmd('EPSV');
  const m = /\(\|\|\|(\d+)\|\)/.exec(epsv);
  if (!m) throw new Error(`EPSV: ${epsv}`);
  const { connect } = await import('node:net');
  const raw = connect({ port: Number(m[1]), host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  const s = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ...(session ? { session } : {}) });
  let data = '';
  let reused = false;
  let protocol: string | null = null;
  s.on('secureConnect', () => {
    reused = s.isSessionReused();
    protocol = s.getProtocol();
  });
  s.on('data', (d: Buffer) => (data += d.toString('utf8')));
  s.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  control.socket.write(command + '\r\n');
  const first = await control.reply();
  const final = first.startsWith('1') ? await control.reply() : first;
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  s.destroy();
  return { first, final, data, reused, protocol };
}

/** A logged-in explicit-TLS control connection with PBSZ 0 / PROT P done. */
export async function protectedClient(port: number, user = 'alice'): Promise<TlsLineClient> {
  const c = await TlsLineClient.explicit(port);
  await c.login(user);
  const pbsz = await c.cmd('PBSZ 0');
  if (!pbsz.startsWith('200')) throw new Error(pbsz);
  const prot = await c.cmd('PROT P');
  if (!prot.startsWith('200')) throw new Error(prot);
  return c;
}
