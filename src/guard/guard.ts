import type { User } from '../auth/types.js';
import type { MoatConfig } from '../config/schema.js';
import type { Actor, MoatEvents, MoatEventMap } from '../observe/events.js';
import { BanStore, bansFileOf, invalidBansText, type BanRecord } from './bans.js';
import { canonicalIp, NetworkList } from './networks.js';
import { ScoreBoard, TokenBucket } from './rate.js';

/**
 * Offence points per security event. Events not listed here (bans, limit
 * hits, timeouts of data connections, ...) are logged but do not score, so a
 * flood of refused connections cannot feed back into the score.
 * `jail-escape-refused` is one of them: a client's path cannot leave the home
 * (it is resolved lexically), only a symlink someone placed in the home can,
 * and a client that lists and fetches what it was shown is not an attacker.
 */
export const SECURITY_POINTS: Readonly<Record<string, number>> = {
  'line-too-long': 2,
  'bounce-attempt': 2,
  'data-connection-refused': 2,
  'command-rate-limit': 2,
  'login-timeout': 1,
};
/** Points for a failed login and for a command refused with 530 before login. */
export const FAILED_LOGIN_POINTS = 1;
export const NOT_LOGGED_IN_POINTS = 1;
export const MALFORMED_POINTS = 1;

export type Admission = { ok: true; release(): void } | { ok: false; text: string; reason: string };
export type LoginVerdict = { ok: true } | { ok: false; kind: 'address' | 'sessions'; text: string };

const NO_SESSION = '-';

/** Open control connections: in total and per address. */
class ConnectionCounts {
  total = 0;
  private readonly perIp = new Map<string, number>();

  of(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  add(ip: string): void {
    this.total++;
    this.perIp.set(ip, this.of(ip) + 1);
  }

  remove(ip: string): void {
    this.total--;
    const n = this.of(ip) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }
}

/**
 * A connection slot, held from admission until the connection closes. An
 * object with a method rather than a closure: the server holds one per
 * connection, thousands when idle.
 */
class Slot {
  readonly ok = true;
  private released = false;

  constructor(
    private readonly counts: ConnectionCounts,
    private readonly ip: string,
  ) {}

  /** Give the slot back; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.counts.remove(this.ip);
  }
}

interface RateState {
  bucket: TokenBucket;
  lastThrottled: number;
}
const EPISODE_GAP_MS = 10_000;

/**
 * The defender, in one place: connection limits (global, per address, per
 * user), network allow/deny lists, per-session command rate, offence scoring
 * and bans. It learns about offences by listening to the server's events, so
 * nothing below the server reaches up to it; the server asks it before it
 * creates a session, the login asks it before it lets a user in, and the
 * dispatcher asks it before it runs a command.
 */
export class Guard {
  private readonly allow: NetworkList;
  private readonly deny: NetworkList;
  private readonly neverBan: NetworkList;
  private readonly connected = new ConnectionCounts();
  /** sessionId → user name, for sessions logged in (or logging in) as that user. */
  private readonly userSessions = new Map<string, string>();
  private readonly rates = new WeakMap<object, RateState>();
  private readonly scores: ScoreBoard;
  private bans: BanStore | undefined;
  /** Addresses we have announced as banned (a 'ban' event went out and no 'unban' yet). */
  private readonly announced = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private ticking = false;
  private readonly unsubscribe: Array<() => void> = [];
  /** Called when an address gets banned, so the server can close its live sessions. */
  onBan: ((ip: string) => void) | undefined;

  constructor(
    private readonly config: MoatConfig,
    private readonly events: MoatEvents,
    private readonly now: () => number = Date.now,
  ) {
    this.allow = new NetworkList(config.guard.allow);
    this.deny = new NetworkList(config.guard.deny);
    this.neverBan = new NetworkList(config.guard.never_ban);
    this.scores = new ScoreBoard(config.guard.ban_window * 1000, now);
  }

  get bansFile(): string {
    return bansFileOf(this.config.state_dir);
  }

  /** Load the ban table, start listening for offences and watching the file. */
  async start(): Promise<void> {
    if (this.bans) return;
    try {
      this.bans = await BanStore.open(this.bansFile);
    } catch (error) {
      throw new Error(`${this.bansFile}: cannot read the ban table (${(error as Error).message}); fix or remove the file`);
    }
    this.reportInvalid();
    for (const r of this.bans.list(this.now())) this.announced.add(r.ip);
    this.listen('login-failed', (e) => this.offence(e, FAILED_LOGIN_POINTS, `failed login (${e.reason})`));
    this.listen('refused', (e) => {
      if (e.reason === 'not logged in') this.offence(e, NOT_LOGGED_IN_POINTS, `${e.command} before login`);
      else if (e.reason === 'malformed verb') this.offence(e, MALFORMED_POINTS, 'malformed command');
    });
    this.listen('security', (e) => {
      const points = SECURITY_POINTS[e.event];
      if (!points) return;
      if (e.event === 'data-connection-refused') {
        // The offender is the foreign address that connected, not the session's client.
        if (e.offender) this.offence({ sessionId: NO_SESSION, ip: e.offender }, points, e.event);
        return;
      }
      this.offence(e, points, e.event);
    });
    const release = (e: Actor) => this.userSessions.delete(e.sessionId);
    this.listen('session-close', release);
    this.listen('logout', release);
    this.listen('login-failed', release);
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
  }

  private listen<K extends keyof MoatEventMap>(name: K, fn: (e: MoatEventMap[K]) => void): void {
    this.events.on(name, fn);
    this.unsubscribe.push(() => this.events.off(name, fn));
  }

  /** Stop watching; resolves once pending writes of the ban table are done. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const off of this.unsubscribe.splice(0)) off();
    await this.saving;
  }

  private security(actor: Actor, event: string, detail?: string): void {
    this.events.emit('security', { ...actor, event, ...(detail ? { detail } : {}) });
  }

  // ---- connections ---------------------------------------------------------------------------

  /**
   * Asked before a session is created. On success the caller must call
   * `release` when the connection closes (it is idempotent).
   */
  admit(rawIp: string): Admission {
    const ip = canonicalIp(rawIp) ?? rawIp;
    const refuse = (text: string, reason: string): Admission => {
      this.security({ sessionId: NO_SESSION, ip }, 'connection-refused', reason);
      return { ok: false, text, reason };
    };
    if (this.deny.has(ip)) return refuse('Access denied from your address.', 'address in guard.deny');
    if (this.allow.size > 0 && !this.allow.has(ip)) return refuse('Access denied from your address.', 'address not in guard.allow');
    const ban = this.bans?.active(ip, this.now());
    if (ban) return refuse('Your address is temporarily banned.', `banned until ${ban.until}`);
    const { max_clients, max_clients_per_ip } = this.config.limits;
    if (this.connected.total >= max_clients) return refuse('Too many users connected; try again later.', `limits.max_clients ${max_clients} reached`);
    if (this.connected.of(ip) >= max_clients_per_ip) {
      return refuse('Too many connections from your address.', `limits.max_clients_per_ip ${max_clients_per_ip} reached`);
    }
    this.connected.add(ip);
    return new Slot(this.connected, ip);
  }

  /** Open control connections: total and from one address. */
  connections(ip?: string): number {
    return ip === undefined ? this.connected.total : this.connected.of(canonicalIp(ip) ?? ip);
  }

  // ---- logins --------------------------------------------------------------------------------

  /**
   * Asked after the password was verified, before the session is logged in:
   * the user's own address rules (a refusal counts as a failed login) and its
   * session cap. On success the session counts towards the user's sessions
   * until it closes, logs out or its login fails after all.
   */
  checkLogin(actor: Actor, user: User): LoginVerdict {
    const ip = actor.ip;
    let addressOk = true;
    try {
      if (user.denyFrom?.length && new NetworkList(user.denyFrom).has(ip)) addressOk = false;
      if (user.allowFrom?.length && !new NetworkList(user.allowFrom).has(ip)) addressOk = false;
    } catch {
      addressOk = false;
    }
    if (!addressOk) {
      this.security({ ...actor, user: user.name }, 'user-address-refused', `user ${user.name} may not log in from ${ip}`);
      return { ok: false, kind: 'address', text: 'Login incorrect.' };
    }
    const limit = user.maxSessions ?? this.config.limits.max_sessions_per_user;
    if (limit > 0) {
      let n = 0;
      for (const [id, name] of this.userSessions) if (name === user.name && id !== actor.sessionId) n++;
      if (n >= limit) {
        this.security({ ...actor, user: user.name }, 'user-session-limit', `${n} ${n === 1 ? 'session' : 'sessions'} open, limit ${limit}`);
        return { ok: false, kind: 'sessions', text: `Too many sessions for user ${user.name}; closing.` };
      }
    }
    this.userSessions.set(actor.sessionId, user.name);
    return { ok: true };
  }

  // ---- command rate --------------------------------------------------------------------------

  /**
   * Asked for every command line of a session; resolves to how many ms the
   * command must wait (0 = run now). Over the rate the session is slowed to
   * `limits.commands_per_second` rather than refused: an FTP client that
   * pipelines a legitimate bulk job is not broken, yet no session gets more
   * than its share of the server. Each run of throttled commands is one
   * security event and scores.
   */
  commandDelay(session: { readonly actor: Actor }): number {
    const { commands_per_second, command_burst } = this.config.limits;
    let state = this.rates.get(session);
    if (!state) {
      state = { bucket: new TokenBucket(commands_per_second, command_burst, this.now), lastThrottled: -Infinity };
      this.rates.set(session, state);
    }
    const wait = state.bucket.reserve();
    if (wait === 0) return 0;
    // One event per episode: throttled commands less than EPISODE_GAP_MS apart belong to the same one.
    const now = this.now();
    const fresh = now - state.lastThrottled > EPISODE_GAP_MS;
    state.lastThrottled = now;
    if (fresh) {
      this.security(session.actor, 'command-rate-limit', `more than ${commands_per_second} commands/s (burst ${command_burst}); slowed down`);
    }
    return wait;
  }

  // ---- scoring and bans ----------------------------------------------------------------------

  /** Add offence points for the actor's address; ban it when the score passes the threshold. */
  offence(actor: Actor, points: number, why: string): void {
    const ip = canonicalIp(actor.ip);
    if (!ip || !this.bans || points <= 0) return;
    if (this.neverBan.has(ip) || this.bans.active(ip, this.now())) return;
    const { ban_threshold, ban_window } = this.config.guard;
    const score = this.scores.add(ip, points);
    if (score >= ban_threshold) {
      // Only who did it: the offence's own fields (reason, command, code) would come between "ip" and
      // "event" in the log line, where the fail2ban filter does not expect them.
      const who: Actor = { sessionId: actor.sessionId, ip, ...(actor.user ? { user: actor.user } : {}) };
      this.ban(ip, `score ${score} >= ${ban_threshold} within ${ban_window} s; last: ${why}`, who);
    }
  }

  /**
   * Ban `ip` (unless never_ban covers it). The duration doubles with each
   * offence, capped at guard.ban_max_duration; `seconds` overrides it.
   */
  ban(rawIp: string, reason: string, actor?: Actor, seconds?: number): BanRecord | undefined {
    const ip = canonicalIp(rawIp);
    if (!ip || !this.bans) return undefined;
    if (this.neverBan.has(ip)) return undefined;
    const { ban_duration, ban_max_duration } = this.config.guard;
    const offences = (this.bans.get(ip)?.offences ?? 0) + 1;
    const duration = seconds ?? Math.min(ban_duration * 2 ** (offences - 1), ban_max_duration);
    if (duration <= 0) return undefined;
    const record = this.bans.ban(ip, duration, reason, this.now(), offences);
    this.scores.clear(ip);
    this.announced.add(ip);
    this.security(actor ?? { sessionId: NO_SESSION, ip }, 'ban', `for ${duration} s (offence ${offences}): ${reason}`);
    this.persist();
    this.onBan?.(ip);
    return record;
  }

  /** Lift a ban (and forget the address's offence history). */
  unban(rawIp: string, why = 'lifted'): boolean {
    const ip = canonicalIp(rawIp);
    if (!ip || !this.bans?.remove(ip)) return false;
    this.scores.clear(ip);
    if (this.announced.delete(ip)) this.security({ sessionId: NO_SESSION, ip }, 'unban', why);
    this.persist();
    return true;
  }

  isBanned(ip: string): boolean {
    return this.bans?.active(ip, this.now()) !== undefined;
  }

  /** Entries of bans.json that are not bans (a hand edit gone wrong) are left out, and said so once. */
  private reportInvalid(): void {
    const n = this.bans?.takeInvalid() ?? 0;
    if (n > 0) this.events.emit('server-error', { error: new Error(invalidBansText(n)), where: `reading ${this.bansFile}` });
  }

  private persist(): void {
    const bans = this.bans;
    if (!bans) return;
    this.saving = this.saving
      .then(() => bans.save((error) => this.events.emit('server-error', { error, where: `reading ${bans.file} (replaced by the bans in memory)` })))
      .catch((error: unknown) => {
        this.events.emit('server-error', { error, where: `writing ${bans.file}` });
      });
  }

  /** Every second: pick up edits by `moat ban`, announce expiries, prune old state. */
  private async tick(): Promise<void> {
    const bans = this.bans;
    if (!bans || this.ticking) return;
    this.ticking = true;
    try {
      await this.saving;
      try {
        await bans.reloadIfChanged();
      } catch (error) {
        this.events.emit('server-error', { error, where: `reading ${bans.file}` });
      }
      this.reportInvalid();
      const now = this.now();
      const active = new Set(bans.list(now).map((r) => r.ip));
      for (const ip of active) {
        if (this.announced.has(ip)) continue;
        this.announced.add(ip);
        const r = bans.get(ip)!;
        this.security({ sessionId: NO_SESSION, ip }, 'ban', `until ${r.until} (from ${bans.file}): ${r.reason}`);
        this.onBan?.(ip);
      }
      for (const ip of [...this.announced]) {
        if (active.has(ip)) continue;
        this.announced.delete(ip);
        this.scores.clear(ip);
        this.security({ sessionId: NO_SESSION, ip }, 'unban', bans.get(ip) ? 'expired' : `removed from ${bans.file}`);
      }
      this.scores.prune();
      const { ban_window, ban_max_duration } = this.config.guard;
      if (bans.prune(Math.max(ban_window, ban_max_duration) * 1000, now)) this.persist();
    } finally {
      this.ticking = false;
    }
  }
}
