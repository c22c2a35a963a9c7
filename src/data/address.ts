import { isIPv4 } from 'node:net';

/** Strip the IPv4-mapped prefix so "::ffff:127.0.0.1" and "127.0.0.1" compare equal. */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && isIPv4(lower.slice(7)) ? lower.slice(7) : lower;
}

export function sameHost(a: string | undefined, b: string | undefined): boolean {
  return normalizeIp(a) === normalizeIp(b);
}

export function ipFamily(ip: string): 4 | 6 {
  return isIPv4(normalizeIp(ip)) ? 4 : 6;
}
