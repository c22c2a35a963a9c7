import { isIPv4, SocketAddress } from 'node:net';

/**
 * One spelling per address, so that comparisons are of addresses, not of text:
 * IPv6 in its canonical form ("0:0:0:0:0:0:0:1" is "::1", as a Java client writes
 * it in EPRT), and the IPv4-mapped prefix stripped ("::ffff:127.0.0.1" is "127.0.0.1").
 */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  let lower = ip.toLowerCase();
  if (lower.includes(':')) {
    try {
      lower = new SocketAddress({ address: lower, family: 'ipv6' }).address;
    } catch {
      // Not an IPv6 address: compared as given.
    }
  }
  return lower.startsWith('::ffff:') && isIPv4(lower.slice(7)) ? lower.slice(7) : lower;
}

/** A dotted IPv4 address as FTP clients write it, leading zeros allowed ("127.0.0.01"); undefined if it is not one. */
export function parseDottedIPv4(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every(isByte)) return undefined;
  return parts.map(Number).join('.');
}

/** A decimal byte as PORT and EPRT carry it: leading zeros allowed, as vsftpd and pure-ftpd take them. */
export function isByte(text: string): boolean {
  return /^0*\d{1,3}$/.test(text) && Number(text) <= 255;
}

export function sameHost(a: string | undefined, b: string | undefined): boolean {
  return normalizeIp(a) === normalizeIp(b);
}

export function ipFamily(ip: string): 4 | 6 {
  return isIPv4(normalizeIp(ip)) ? 4 : 6;
}
