import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { normalizeIp } from '../data/address.js';

/**
 * A set of networks (CIDRs or single addresses, IPv4 and IPv6) backed by
 * `net.BlockList`. Addresses are normalised first, so an IPv4-mapped IPv6
 * address (::ffff:10.0.0.1, what a dual-stack listener reports) matches the
 * IPv4 rule 10.0.0.0/8.
 */
export class NetworkList {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(readonly entries: readonly string[] = []) {
    for (const entry of entries) {
      const [addr = '', bits] = entry.split('/');
      const a = normalizeIp(addr);
      const type = isIPv4(a) ? 'ipv4' : isIPv6(a) ? 'ipv6' : undefined;
      if (!type) throw new Error(`not an IP address or CIDR: ${entry}`);
      if (bits === undefined) this.list.addAddress(a, type);
      else {
        let prefix = Number(bits);
        // ::ffff:a.b.c.d/104 is the IPv4 network a.b.c.d/8.
        if (type === 'ipv4' && addr.includes(':')) prefix = Math.max(0, prefix - 96);
        this.list.addSubnet(a, prefix, type);
      }
    }
    this.size = entries.length;
  }

  has(ip: string): boolean {
    if (this.size === 0) return false;
    const a = normalizeIp(ip);
    if (isIPv4(a)) return this.list.check(a, 'ipv4') || this.list.check(`::ffff:${a}`, 'ipv6');
    if (isIPv6(a)) return this.list.check(a, 'ipv6');
    return false;
  }
}

const LOOPBACK = new NetworkList(['127.0.0.0/8', '::1']);

export function isLoopback(ip: string): boolean {
  return LOOPBACK.has(ip);
}

/** Canonical text of an address, for keys of the ban table ("::FFFF:1.2.3.4" → "1.2.3.4"). */
export function canonicalIp(ip: string): string | undefined {
  const a = normalizeIp(ip.trim());
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return undefined;
  // Let the URL parser compress and lower-case IPv6.
  try {
    return new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return a;
  }
}
