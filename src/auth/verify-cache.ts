import { createHmac, randomBytes } from 'node:crypto';

export interface VerifyCacheOptions {
  /** Most entries kept; the least recently used goes first. Default 10,000. */
  maxEntries?: number;
  /** How long a successful verification is trusted, from the moment it happened. Default 300 s. */
  ttlMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Entry {
  user: string;
  expires: number;
}

/**
 * Remembers recent successful password verifications so that a device that
 * logs in every few seconds does not pay for scrypt each time.
 *
 * The key is HMAC-SHA256 under a per-process random key over
 * name NUL password NUL stored-hash. Consequences:
 * - the password is never stored, and the keys are useless outside this process;
 * - a new password (new stored hash) can never hit an old entry;
 * - a wrong password is a miss and goes through scrypt as usual.
 * Names and hashes contain no NUL, so the three parts cannot be shifted into
 * one another.
 *
 * The expiry is not extended on a hit: a cached credential is trusted for at
 * most `ttlMs` after the real verification, however often it is used.
 */
export class VerifyCache {
  private readonly secret = randomBytes(32);
  private readonly entries = new Map<string, Entry>();
  /** Verifications running now, by key: concurrent logins with the same credentials share one. */
  private readonly running = new Map<string, Promise<boolean>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: VerifyCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.ttlMs = options.ttlMs ?? 300_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** True when this exact name, password and stored hash verified successfully less than `ttlMs` ago. */
  has(name: string, password: string, storedHash: string): boolean {
    return this.#hasKey(this.key(name, password, storedHash));
  }

  #hasKey(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    if (entry.expires <= this.now()) return false;
    // Re-insert to move it to the young end of the Map's insertion order (LRU).
    this.entries.set(key, entry);
    return true;
  }

  /** Record a successful verification. Call only after the real check passed. */
  remember(name: string, password: string, storedHash: string): void {
    this.#rememberKey(this.key(name, password, storedHash), name);
  }

  #rememberKey(key: string, name: string): void {
    if (this.maxEntries <= 0 || this.ttlMs <= 0) return;
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { user: name, expires: this.now() + this.ttlMs });
  }

  /**
   * True when the credentials verify: from the cache, or else by `check` (the
   * real, costly verification). A burst of logins with the same credentials
   * (a client opening many connections at once) runs `check` once, not once
   * per connection: scrypt takes tens of MiB per run, and the C library
   * keeps that memory for the process once several runs overlapped.
   */
  async verify(name: string, password: string, storedHash: string, check: () => Promise<boolean>): Promise<boolean> {
    // One HMAC per login, hit or miss.
    const key = this.key(name, password, storedHash);
    if (this.#hasKey(key)) return true;
    let run = this.running.get(key);
    if (!run) {
      run = check()
        .then((ok) => {
          if (ok) this.#rememberKey(key, name);
          return ok;
        })
        .finally(() => this.running.delete(key));
      this.running.set(key, run);
    }
    return run;
  }

  forgetUser(name: string): void {
    for (const [key, entry] of this.entries) {
      if (entry.user === name) this.entries.delete(key);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  private key(name: string, password: string, storedHash: string): string {
    return createHmac('sha256', this.secret).update(`${name}\0${password}\0${storedHash}`, 'utf8').digest('base64');
  }
}
