import { DEFAULT_NEVER_BAN, type MoatConfig } from './schema.js';

export interface WeakerOption {
  key: string;
  /** What the setting gives up, for the start-up log line. */
  detail: string;
}

/**
 * Settings that trade safety away from the defaults. Each is allowed, but the
 * server says so at every start (one warning per setting), so a weakened
 * configuration is never silent.
 */
export function weakerOptions(c: MoatConfig): WeakerOption[] {
  const out: WeakerOption[] = [];
  const add = (key: string, detail: string): void => void out.push({ key, detail });
  const hasCert = c.tls.cert !== '' || c.tls.generate_self_signed;
  // Unset: required with a certificate (docs/configuration.md).
  const control = c.tls.control ?? (hasCert ? 'required' : 'off');
  if (c.active.allow_foreign_hosts) add('active.allow_foreign_hosts', 'PORT/EPRT may point data connections at other hosts (FTP bounce)');
  if (c.active.allow_low_ports) add('active.allow_low_ports', 'PORT/EPRT may point data connections at ports below 1024');
  if (c.anonymous.enabled) add('anonymous.enabled', `anonymous logins are accepted (home "${c.anonymous.home}")`);
  // Only an exception where TLS is otherwise required: without that, every login may be in clear already.
  if (c.anonymous.enabled && c.anonymous.allow_plaintext && control === 'required') add('anonymous.allow_plaintext', 'anonymous logins are accepted without TLS');
  if (hasCert && control !== 'required') {
    add('tls.control', `"${c.tls.control}": logins without TLS are accepted although a certificate is configured`);
  }
  if (c.tls.data === 'optional' && control === 'required') add('tls.data', '"optional": data connections may be unencrypted');
  if (c.tls.data_session === 'off') add('tls.data_session', '"off": a PROT P data connection need not resume the control connection\'s TLS session');
  if (c.guard.failed_login_delay_ms === 0) add('guard.failed_login_delay_ms', '0: wrong passwords are answered at once');
  if (c.timeouts.idle === 0) add('timeouts.idle', '0: idle sessions are never closed');
  if (c.timeouts.stalled_transfer === 0) add('timeouts.stalled_transfer', '0: stalled transfers are never aborted');
  if (c.guard.ban_duration === 0) add('guard.ban_duration', '0: addresses are never banned, however they score');
  const extra = c.guard.never_ban.filter((cidr) => !DEFAULT_NEVER_BAN.includes(cidr));
  if (extra.length) add('guard.never_ban', `${extra.join(', ')} can never be banned`);
  if (c.tls.ciphers !== '' && control !== 'off') add('tls.ciphers', 'a custom cipher list replaces the default (AEAD suites with forward secrecy only)');
  if (c.limits.listing_timeout === 0) add('limits.listing_timeout', '0: a listing on a hung filesystem holds its client forever');
  return out;
}
