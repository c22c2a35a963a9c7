/**
 * A token bucket: `burst` tokens, refilled at `perSecond`; each command takes
 * one. Pure, with an injectable clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
  }

  /**
   * Take a token now or on credit: returns how many ms the caller must wait
   * before acting (0 when a token was there).
   */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }
}

/**
 * Offence points per address inside a sliding window. Pure, with an
 * injectable clock.
 */
export class ScoreBoard {
  private readonly points = new Map<string, Array<{ at: number; n: number }>>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Add points for `ip`; returns the total inside the window. */
  add(ip: string, n: number): number {
    const t = this.now();
    const list = (this.points.get(ip) ?? []).filter((p) => t - p.at < this.windowMs);
    list.push({ at: t, n });
    this.points.set(ip, list);
    return list.reduce((sum, p) => sum + p.n, 0);
  }

  clear(ip: string): void {
    this.points.delete(ip);
  }

  /** Forget addresses whose points have all left the window (bounded memory). */
  prune(): void {
    const t = this.now();
    for (const [ip, list] of this.points) {
      if (list.every((p) => t - p.at >= this.windowMs)) this.points.delete(ip);
    }
  }
}
