import { isIP } from 'node:net';

/*
 * Checks of single values that both the configuration and the users file
 * take: one definition, so the two never disagree on what is valid.
 */

/** An IP address, or a CIDR block of the address's own family. */
export function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * The problem with a home folder, or null when it is valid. A home is
 * relative to the server root; absolute paths and '..' segments are refused
 * so that a users file or a config can never point a user outside the root.
 * Backslashes count as separators because storage/ treats them so.
 */
export function checkHome(home: string): string | null {
  if (/[\u0000-\u001f\u007f]/.test(home)) return 'home must not contain control characters';
  if (/^[/\\]/.test(home) || /^[A-Za-z]:/.test(home)) return `home ${JSON.stringify(home)} must be relative to the server root`;
  if (home.split(/[/\\]/).includes('..')) return `home ${JSON.stringify(home)} must not contain '..'`;
  if (home.length > 1024) return 'home is longer than 1024 characters';
  return null;
}

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/**
 * Why `host` cannot be announced in a 227 reply, or null: PASV carries an IPv4
 * address, so an IPv4 literal or a DNS name (resolved to IPv4 at each PASV).
 */
export function checkPublicHost(host: string): string | null {
  if (isIP(host) === 4) return null;
  if (isIP(host) === 6) return 'PASV can only announce IPv4: give an IPv4 address or a host name (EPSV needs none)';
  if (host.length <= 253 && host.split('.').every((label) => LABEL.test(label))) return null;
  return `expected an IPv4 address or a host name, got ${JSON.stringify(host)}`;
}
