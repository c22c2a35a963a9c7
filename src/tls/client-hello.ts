/**
 * A small, bounded reader of the first TLS handshake message (ClientHello).
 *
 * Moat reads the ClientHello itself before handing the bytes to OpenSSL, for
 * two reasons: to tell a plain FTP command or an HTTP request on a TLS port
 * from a handshake (and close it with one log line), and to learn which
 * session the client wants to resume (TLS 1.3 PSK identity, TLS 1.2 ticket or
 * session id), so that a data connection can be checked against the
 * control connection it claims to belong to *before* any key is used.
 *
 * The bytes are not consumed: the caller feeds them to the TLS socket as they were.
 */

export type HelloScan =
  | { kind: 'more' }
  | { kind: 'not-tls'; guess: 'http' | 'ftp' | 'garbage' }
  | { kind: 'malformed'; reason: string }
  | { kind: 'hello'; hello: ClientHello };

export interface ClientHello {
  /** Legacy session id (TLS 1.2 session-id resumption; random in TLS 1.3). */
  sessionId: Buffer;
  /** TLS 1.2 session ticket (extension 35), if non-empty. */
  ticket: Buffer | undefined;
  /** TLS 1.3 pre_shared_key identities (extension 41), in the client's order. */
  pskIdentities: Buffer[];
}

/** A ClientHello never needs more than this (post-quantum key shares included). */
export const MAX_HELLO_BYTES = 32 * 1024;

const HTTP_VERB = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH|TRACE|PRI) /;
const FTP_VERB = /^[A-Za-z]{3,4}( |\r|\n)/;

function guess(buf: Buffer): 'http' | 'ftp' | 'garbage' {
  const head = buf.subarray(0, 16).toString('latin1');
  if (HTTP_VERB.test(head)) return 'http';
  if (FTP_VERB.test(head)) return 'ftp';
  return 'garbage';
}

/** Scan what arrived so far; 'more' asks for more bytes. */
export function scanClientHello(buf: Buffer): HelloScan {
  if (buf.length === 0) return { kind: 'more' };
  if (buf[0] !== 0x16) return { kind: 'not-tls', guess: guess(buf) };
  if (buf.length >= 2 && buf[1] !== 0x03) return { kind: 'not-tls', guess: 'garbage' };
  // Reassemble the handshake message from as many records as it spans.
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  let pos = 0;
  for (;;) {
    if (pos + 5 > buf.length) return buf.length > MAX_HELLO_BYTES ? { kind: 'malformed', reason: 'too long' } : { kind: 'more' };
    if (buf[pos] !== 0x16) return { kind: 'malformed', reason: 'unexpected record type' };
    const len = buf.readUInt16BE(pos + 3);
    if (len === 0 || len > 16_384 + 256) return { kind: 'malformed', reason: 'bad record length' };
    if (pos + 5 + len > buf.length) {
      return buf.length > MAX_HELLO_BYTES ? { kind: 'malformed', reason: 'too long' } : { kind: 'more' };
    }
    parts.push(buf.subarray(pos + 5, pos + 5 + len));
    have += len;
    pos += 5 + len;
    if (need < 0 && have >= 4) {
      const head = Buffer.concat(parts);
      if (head[0] !== 0x01) return { kind: 'malformed', reason: 'first handshake message is not a ClientHello' };
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_HELLO_BYTES) return { kind: 'malformed', reason: 'ClientHello too long' };
    }
    if (need >= 0 && have >= need) break;
  }
  try {
    return { kind: 'hello', hello: parseHello(Buffer.concat(parts).subarray(4, need)) };
  } catch {
    return { kind: 'malformed', reason: 'unparsable ClientHello' };
  }
}

class Reader {
  pos = 0;
  constructor(private readonly b: Buffer) {}
  take(n: number): Buffer {
    if (this.pos + n > this.b.length) throw new RangeError('short');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  get left(): number {
    return this.b.length - this.pos;
  }
}

function parseHello(body: Buffer): ClientHello {
  const r = new Reader(body);
  r.take(2 + 32); // legacy_version, random
  const sessionId = Buffer.from(r.take(r.u8()));
  r.take(r.u16()); // cipher suites
  r.take(r.u8()); // compression methods
  const out: ClientHello = { sessionId, ticket: undefined, pskIdentities: [] };
  if (r.left === 0) return out;
  const ext = new Reader(r.take(r.u16()));
  while (ext.left > 0) {
    const type = ext.u16();
    const data = ext.take(ext.u16());
    if (type === 35 && data.length > 0) out.ticket = Buffer.from(data);
    if (type === 41) {
      const psk = new Reader(data);
      const ids = new Reader(psk.take(psk.u16()));
      while (ids.left > 0) {
        out.pskIdentities.push(Buffer.from(ids.take(ids.u16())));
        ids.take(4); // obfuscated_ticket_age
      }
    }
  }
  return out;
}
