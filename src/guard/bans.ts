import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { lockFile, syncDirectory } from '../state/files.js';
import { canonicalIp } from './networks.js';

/** One banned (or once-banned) address. Expired records are kept a while so repeat offences double. */
export interface BanRecord {
  ip: string;
  /** ISO times. */
  since: string;
  until: string;
  /** How many times this address has been banned (1 = first ban). */
  offences: number;
  reason: string;
}

interface BanFile {
  version: 1;
  bans: BanRecord[];
}

export function bansFileOf(stateDir: string): string {
  return join(stateDir, 'bans.json');
}

type Stamp = { mtimeMs: number; size: number; ino: number } | null;

async function stampOf(file: string): Promise<Stamp> {
  try {
    const s = await stat(file);
    return { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
  } catch {
    return null;
  }
}

function sameStamp(a: Stamp, b: Stamp): boolean {
  return a === b || (a !== null && b !== null && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino);
}

/** What the server logs and `moat ban` prints about entries left out of a bans file. */
export function invalidBansText(n: number): string {
  return `${n} ${n === 1 ? 'entry is not a valid ban and was' : 'entries are not valid bans and were'} left out (each needs ip, since and until)`;
}

/** A reason as it is kept and shown: one line (`moat ban list` prints one ban per line), at most 200 characters. */
function reasonText(reason: string): string {
  return reason.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 200);
}

/** The records of a bans file, and how many of its entries were not valid bans (left out). */
function parse(text: string): { records: Map<string, BanRecord>; invalid: number } {
  const data = JSON.parse(text) as Partial<BanFile>;
  if (!data || !Array.isArray(data.bans)) throw new Error('bans file: expected {"version":1,"bans":[...]}');
  const records = new Map<string, BanRecord>();
  let invalid = 0;
  for (const r of data.bans) {
    const ip = typeof r?.ip === 'string' ? canonicalIp(r.ip) : undefined;
    if (!ip || typeof r.until !== 'string' || typeof r.since !== 'string' || Number.isNaN(Date.parse(r.until)) || Number.isNaN(Date.parse(r.since))) {
      invalid++;
      continue;
    }
    records.set(ip, {
      ip,
      since: r.since,
      until: r.until,
      offences: Number.isInteger(r.offences) && r.offences > 0 ? r.offences : 1,
      reason: typeof r.reason === 'string' ? reasonText(r.reason) : '',
    });
  }
  return { records, invalid };
}

/** The file's records as parse() gives them; no file (no stamp) is an empty table. */
async function readTable(file: string, stamp: Stamp): Promise<ReturnType<typeof parse>> {
  return stamp ? parse(await readFile(file, 'utf8')) : { records: new Map<string, BanRecord>(), invalid: 0 };
}

/**
 * The ban table in `<state_dir>/bans.json`: read at start, written atomically
 * (temporary file + rename, so a reader never sees half a file), and re-read
 * when another process (`moat ban`) changed it. The server and `moat ban` both
 * write it: each keeps its own changes since its last write as a list of
 * edits and replays them onto a fresh read of the file when it changed, so
 * neither overwrites the other's bans. Read, write and rename happen under a
 * lock file (`bans.json.lock`), so no write lands between another writer's
 * read and its rename.
 */
export class BanStore {
  private records: Map<string, BanRecord>;
  private stamp: Stamp;
  /**
   * Changes made here and not yet written: the latest per address (it alone
   * decides that address's record), so the list stays as small as the table
   * even while writes keep failing.
   */
  private readonly edits = new Map<string, (records: Map<string, BanRecord>) => void>();

  /** Entries of the version last read that were not valid bans, until `takeInvalid` reports them. */
  private invalid: number;

  private constructor(
    readonly file: string,
    read: { records: Map<string, BanRecord>; invalid: number },
    stamp: Stamp,
  ) {
    this.records = read.records;
    this.invalid = read.invalid;
    this.stamp = stamp;
  }

  /** Open the table; a missing file is an empty table. A corrupt file throws. */
  static async open(file: string): Promise<BanStore> {
    const stamp = await stampOf(file);
    return new BanStore(file, await readTable(file, stamp), stamp);
  }

  /**
   * How many entries of the file as last read were left out as not valid bans
   * (a hand edit gone wrong), once per version read: the caller says so.
   */
  takeInvalid(): number {
    const n = this.invalid;
    this.invalid = 0;
    return n;
  }

  get(ip: string): BanRecord | undefined {
    const key = canonicalIp(ip);
    return key ? this.records.get(key) : undefined;
  }

  /** The record if `ip` is banned at `now`. */
  active(ip: string, now = Date.now()): BanRecord | undefined {
    const r = this.get(ip);
    return r && Date.parse(r.until) > now ? r : undefined;
  }

  list(now = Date.now(), all = false): BanRecord[] {
    return [...this.records.values()].filter((r) => all || Date.parse(r.until) > now).sort((a, b) => a.ip.localeCompare(b.ip));
  }

  /** Ban `ip` for `seconds` from `now`; `offences` defaults to one more than before. */
  ban(ip: string, seconds: number, reason: string, now = Date.now(), offences?: number): BanRecord {
    const key = canonicalIp(ip);
    if (!key) throw new Error(`not an IP address: ${ip}`);
    const previous = this.records.get(key);
    const record: BanRecord = {
      ip: key,
      since: new Date(now).toISOString(),
      until: new Date(now + seconds * 1000).toISOString(),
      offences: offences ?? (previous?.offences ?? 0) + 1,
      reason: reasonText(reason),
    };
    this.records.set(key, record);
    this.edit(key, (records) => records.set(key, record));
    return record;
  }

  remove(ip: string): boolean {
    const key = canonicalIp(ip);
    // Nothing to lift here: no edit, or it would erase a ban the other writer adds later.
    if (!key || !this.records.has(key)) return false;
    this.edit(key, (records) => records.delete(key));
    return this.records.delete(key);
  }

  /** Drop expired records older than `keepMs` (after that a new ban starts again at offence 1). */
  prune(keepMs: number, now = Date.now()): boolean {
    let changed = false;
    for (const [ip, r] of this.records) {
      if (Date.parse(r.until) + keepMs < now) {
        this.records.delete(ip);
        // Only the record that expired: a newer ban of the address by the other writer stays.
        this.edit(ip, (records) => records.get(ip)?.until === r.until && records.delete(ip));
        changed = true;
      }
    }
    return changed;
  }

  /**
   * Write the table atomically. When root rewrites the file, the previous
   * owner keeps it. A file changed by another writer is read first, so its
   * bans are kept; one that cannot be read is replaced by the table in memory
   * and its error handed to `onUnreadable` (the caller logs it).
   */
  async save(onUnreadable: (error: unknown) => void = () => undefined): Promise<void> {
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true });
    const release = await lockFile(`${this.file}.lock`);
    try {
      await this.reloadIfChanged().catch(onUnreadable);
      const written = [...this.edits];
      await this.write(dir);
      // Edits made while this write was in flight stay for the next one.
      for (const [ip, edit] of written) if (this.edits.get(ip) === edit) this.edits.delete(ip);
    } finally {
      await release();
    }
  }

  private async write(dir: string): Promise<void> {
    const body: BanFile = { version: 1, bans: this.list(0, true) };
    const temp = join(dir, `.bans.json.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    // 0600 like the users file: which addresses are banned, and why, is the operator's business.
    const handle = await open(temp, 'wx', 0o600);
    try {
      try {
        await handle.writeFile(JSON.stringify(body, null, 2) + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (process.getuid?.() === 0) {
        const owner = await stat(this.file).catch(() => stat(dir));
        if (owner.uid !== 0) await chown(temp, owner.uid, owner.gid);
      }
      await rename(temp, this.file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await syncDirectory(dir);
    this.stamp = await stampOf(this.file);
  }

  private edit(ip: string, change: (records: Map<string, BanRecord>) => void): void {
    this.edits.delete(ip);
    this.edits.set(ip, change);
  }

  /**
   * Re-read the file if it changed on disk since we last read or wrote it,
   * with this store's unwritten edits replayed on top. Resolves to the
   * previous records when it did, else null. A version that fails to parse is
   * reported once, not on every check: its stamp is taken first, and the bans
   * in memory stay as they were.
   */
  async reloadIfChanged(): Promise<Map<string, BanRecord> | null> {
    const now = await stampOf(this.file);
    if (sameStamp(now, this.stamp)) return null;
    this.stamp = now;
    const read = await readTable(this.file, now);
    this.invalid = read.invalid;
    const next = read.records;
    for (const edit of this.edits.values()) edit(next);
    const previous = this.records;
    this.records = next;
    return previous;
  }
}
