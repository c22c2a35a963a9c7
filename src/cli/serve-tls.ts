import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { MoatConfig } from '../config/schema.js';
import { CertError } from '../tls/certs.js';
import { TlsLayer } from '../tls/layer.js';
import type { ServeFlags } from './serve-options.js';
import { CliError } from './user.js';

/**
 * The zero-configuration start (`moat serve` with no config file and none of
 * --listen/--root/--users, which is what `npm start` runs) is the embedded
 * default: it gets a self-signed certificate, so it serves FTPS out of the box.
 * A start driven by flags stays plain FTP unless a TLS flag is given.
 */
export function isZeroConfigStart(flags: ServeFlags): boolean {
  return !flags.config && !flags.listen && !flags.root && !flags.users && flags.tls === undefined;
}

/** Build the TLS layer for `moat serve`, or undefined for a plain FTP server. */
export async function prepareTls(config: MoatConfig, options: { zeroConfig: boolean; log: Logger }): Promise<TlsLayer | undefined> {
  if (config.tls.control === 'off') return undefined;
  const { log } = options;
  try {
    return await TlsLayer.create(config, {
      selfSigned: options.zeroConfig,
      log: (level, message, fields) => log[level]({ ...fields }, message),
    });
  } catch (error) {
    if (error instanceof CertError) throw new CliError(`TLS: ${error.message}`);
    throw error;
  }
}

/** Reload on SIGHUP and when the files change; sessions are never dropped. */
export function watchTls(tls: TlsLayer): void {
  process.on('SIGHUP', () => void tls.reload('SIGHUP'));
  tls.watch();
}

/** Start-up lines about TLS: listeners, policy, certificate fingerprint (to pin), and how to try it. */
export function tlsStartupLines(tls: TlsLayer | undefined, config: MoatConfig, implicit: string[], first: string): string[] {
  if (!tls) return [];
  const cert = tls.certificate;
  const lines = [
    `FTPS: explicit (AUTH TLS) on ${first}${implicit.length ? `; implicit TLS on ${implicit.map((a) => `ftps://${a}`).join(', ')}` : ''}`,
    `  TLS policy: control ${tls.policies.serverControl}, data ${config.tls.data ?? 'follows the control connection'}, data_session ${config.tls.data_session}`,
    `  certificate ${resolve(tls.certFile)}${tls.generated ? ' (self-signed, generated now)' : ''}`,
    `  SHA-256 fingerprint: ${cert.fingerprint}`,
  ];
  return lines;
}

/** The "Try:" line for the demo user: over TLS when the server requires it. */
export function tryCommand(tls: TlsLayer | undefined, user: string, password: string, first: string): string {
  if (!tls) return `curl --user ${user}:${password} ftp://${first}/`;
  if (!tls.selfSigned) return `curl --ssl-reqd --user ${user}:${password} ftp://${first}/`;
  return `curl --ssl-reqd --cacert ${resolve(tls.certFile)} --user ${user}:${password} ftp://${first}/`;
}
