import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Password hashes are stored as `scrypt$N$r$p$saltB64$hashB64`, so the cost
 * can be raised later without breaking hashes already in users files: each
 * hash carries the parameters it was made with.
 */
const N = 16_384;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/*
 * Bounds on parameters read back from a file. A users file is trusted, but a
 * typo such as N=2^30 would make every login allocate a gigabyte, so absurd
 * values are refused as malformed instead.
 */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

const ENCODED = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** How a store checks a password against a stored hash; `verifyPassword` unless a test injects a counter. */
export type PasswordVerifier = (password: string, encoded: string) => Promise<boolean>;

interface ScryptHash {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function parse(encoded: string): ScryptHash | null {
  const m = ENCODED.exec(encoded);
  if (!m) return null;
  const n = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  const isPowerOfTwo = n >= 2 && (n & (n - 1)) === 0;
  if (!isPowerOfTwo || n > MAX_N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return null;
  const salt = Buffer.from(m[4]!, 'base64');
  const hash = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { n, r, p, salt, hash };
}

function format(h: ScryptHash): string {
  return `scrypt$${h.n}$${h.r}$${h.p}$${h.salt.toString('base64')}$${h.hash.toString('base64')}`;
}

/** True when `encoded` is a hash this module can verify (used to validate users files). */
export function isPasswordHash(encoded: string): boolean {
  return parse(encoded) !== null;
}

function derive(password: string, salt: Buffer, n: number, r: number, p: number, keyLength: number): Promise<Buffer> {
  // scrypt needs 128*N*r bytes; Node's default maxmem (32 MiB) is too small
  // for the upper parameter bounds, so allow twice the real need.
  const maxmem = 256 * n * r;
  // NFC so that "é" typed as one code point at the CLI and as e + accent by
  // an FTP client derive the same key.
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLength, { N: n, r, p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, N, R, P, KEY_BYTES);
  return format({ n: N, r: R, p: P, salt, hash });
}

/** False for a wrong password and for a malformed hash alike. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const h = parse(encoded);
  if (!h) return false;
  const actual = await derive(password, h.salt, h.n, h.r, h.p, h.hash.length);
  return timingSafeEqual(actual, h.hash);
}

/*
 * A hash no password matches: random bytes, never the output of scrypt, so
 * building it costs nothing. Verifying against it costs exactly what a real
 * verification with the default parameters costs.
 */
export const DUMMY_HASH = format({ n: N, r: R, p: P, salt: randomBytes(SALT_BYTES), hash: randomBytes(KEY_BYTES) });

/**
 * Spend the time of one verification and fail. Called for unknown users so
 * that "no such user" and "wrong password" take the same time.
 */
export async function verifyDummy(password: string, verify: PasswordVerifier = verifyPassword): Promise<false> {
  await verify(password, DUMMY_HASH);
  return false;
}
