import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FIELDS, KINDS } from './entry-table.js';

/** What a listing needs from one lstat, packed so it crosses threads without copying objects. */
export interface LstatResult {
  kind: 'file' | 'dir' | 'link' | 'other';
  size: number;
  mtimeMs: number;
  mode: number;
  nlink: number;
  dev: bigint;
  ino: bigint;
}

/** What a worker found at a path, with the bytes when it read the file whole. */
export interface SmallRead {
  kind: 'file' | 'dir' | 'other';
  size: number;
  /** Set only for a regular file no larger than asked for. */
  data?: Buffer;
  /**
   * With `data` in a shared slot: hands the slot back. `data` must not be
   * used (nor be still queued on a socket) after it; calling it twice is safe.
   */
  release?: () => void;
}

/**
 * Small reads land in slots of one shared slab instead of a new buffer each:
 * a transferred buffer per 64 KiB file is external memory that drove a scavenge
 * every ~30 files and a full GC every ~150 ms at 4,500 files/s. Virtual size
 * SLOTS × SLOT_BYTES; only the pages files were read into become resident.
 */
const SLOT_BYTES = 256 * 1024;
/** Entries per lstat job: ~4 ms of syscalls here, so other jobs never wait long behind a listing. */
const LSTAT_BATCH = 2048;
const SLOTS = 64;

/*
 * The worker's source, plain CommonJS: a worker cannot load this project's
 * TypeScript under tsx, and the code is small enough to read here. Its calls
 * are synchronous: it has no loop to keep free, and one message per job
 * replaces a thread-pool round trip per call (each one a thread wake-up on
 * both sides, the largest single cost of serving small files).
 * - lstat: every name it is sent; answers with transferable typed arrays,
 *   a kind of -1 meaning the entry vanished.
 * - names: the entries of a folder, up to `limit`, without those named
 *   `hidden.prefix`…`hidden.suffix` (and without '.' and '..'), in one
 *   message instead of a thread-pool round trip and a promise per batch.
 * - read: open (O_NOFOLLOW: a link fails with ELOOP and is left to the
 *   caller's jail check; O_NONBLOCK: a FIFO cannot hang it), fstat, and the
 *   whole file when it is a regular file of at most `max` bytes, into slot
 *   `slot` of the shared slab when given one (sent once with op 'slab'), else
 *   into a new buffer that it transfers.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { lstatSync, opendirSync, openSync, fstatSync, readSync, closeSync, constants: C } = require('node:fs');
const READ_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
let slab;
function readSmall({ id, path, max, slot }) {
  const fd = openSync(path, READ_FLAGS);
  try {
    const st = fstatSync(fd);
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    if (kind !== 'file' || st.size > max) return parentPort.postMessage({ id, kind, size: st.size });
    const inSlab = slot !== undefined;
    const data = inSlab ? new Uint8Array(slab, slot * ${SLOT_BYTES}, ${SLOT_BYTES}) : new Uint8Array(new ArrayBuffer(st.size));
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, data, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (inSlab) parentPort.postMessage({ id, kind, size: got, slot });
    else parentPort.postMessage({ id, kind, size: got, data: data.buffer }, [data.buffer]);
  } finally {
    closeSync(fd);
  }
}
function readNames({ id, dir, limit, hidden }) {
  const names = [];
  const d = opendirSync(dir, { bufferSize: 1024 });
  try {
    for (let e = d.readSync(); e !== null && names.length < limit; e = d.readSync()) {
      if (!(e.name.startsWith(hidden.prefix) && e.name.endsWith(hidden.suffix))) names.push(e.name);
    }
  } finally {
    d.closeSync();
  }
  parentPort.postMessage({ id, names });
}
parentPort.on('message', (job) => {
  try {
    if (job.op === 'slab') return void (slab = job.slab);
    if (job.op === 'read') return readSmall(job);
    if (job.op === 'names') return readNames(job);
    lstatMany(job);
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: { code: error.code, message: error.message } });
  }
});
// Node's own lstat binding fills one shared BigInt64Array instead of building
// a BigIntStats object per entry: 10,000 entries in ~17 ms instead of ~28.
// It is internal, so it is used only after it matched lstatSync here.
const rawLstat = (() => {
  try {
    const binding = process.binding('fs');
    const probe = (path) => binding.lstat(path, true, undefined, false);
    const raw = probe('.');
    const st = lstatSync('.', { bigint: true });
    const same = raw && raw.length >= 14 && raw[0] === st.dev && raw[1] === st.mode && raw[2] === st.nlink &&
      raw[7] === st.ino && raw[8] === st.size && raw[12] * 1000000000n + raw[13] === st.mtimeNs;
    return same ? probe : undefined;
  } catch {
    return undefined;
  }
})();
const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFDIR = 0o040000, S_IFLNK = 0o120000;
function lstatMany({ id, prefix, names }) {
  const nums = new Float64Array(names.length * ${FIELDS});
  const ids = new BigUint64Array(names.length * 2);
  for (let i = 0; i < names.length; i++) {
    const at = i * ${FIELDS};
    if (rawLstat) {
      const raw = rawLstat(prefix + names[i]);
      if (!raw) { nums[at] = -1; continue; }
      const type = Number(raw[1]) & S_IFMT;
      nums[at] = type === S_IFREG ? 0 : type === S_IFDIR ? 1 : type === S_IFLNK ? 2 : 3;
      nums[at + 1] = Number(raw[8]);
      // Whole ms truncated toward zero, as lstat's mtimeMs and Date have them (before 1970 too).
      const ns = Number(raw[13]);
      const ms = Number(raw[12]) * 1000 + Math.floor(ns / 1e6);
      nums[at + 2] = ms < 0 && ns % 1e6 !== 0 ? ms + 1 : ms;
      nums[at + 3] = Number(raw[1]);
      nums[at + 4] = Number(raw[2]);
      ids[i * 2] = BigInt.asUintN(64, raw[0]);
      ids[i * 2 + 1] = BigInt.asUintN(64, raw[7]);
      continue;
    }
    const st = lstatSync(prefix + names[i], { bigint: true, throwIfNoEntry: false });
    if (!st) { nums[at] = -1; continue; }
    nums[at] = st.isFile() ? 0 : st.isDirectory() ? 1 : st.isSymbolicLink() ? 2 : 3;
    nums[at + 1] = Number(st.size);
    nums[at + 2] = Number(st.mtimeMs);
    nums[at + 3] = Number(st.mode);
    nums[at + 4] = Number(st.nlink);
    ids[i * 2] = st.dev;
    ids[i * 2 + 1] = st.ino;
  }
  parentPort.postMessage({ id, nums, ids }, [nums.buffer, ids.buffer]);
}
`;

type Message =
  | { op: 'lstat'; prefix: string; names: string[] }
  | { op: 'read'; path: string; max: number; slot?: number }
  | { op: 'slab'; slab: SharedArrayBuffer }
  | { op: 'names'; dir: string; limit: number; hidden: { prefix: string; suffix: string } };

interface LstatReply {
  nums: Float64Array;
  ids: BigUint64Array;
}

interface ReadReply {
  kind: SmallRead['kind'];
  size: number;
  data?: ArrayBuffer;
  slot?: number;
}

interface Reply extends Partial<LstatReply>, Partial<ReadReply> {
  names?: string[];
  id: number;
  error?: { code?: string; message: string };
}

interface Job {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

/** One worker and the jobs it holds. Referenced only while it holds some: idle, it never keeps the process alive. */
class FsWorker {
  // No inherited flags: `--input-type=module` would make the source ESM, and loaders like tsx only slow the start.
  readonly #worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
  readonly #jobs = new Map<number, Job>();
  #nextId = 0;
  dead = false;

  constructor() {
    this.#worker.on('message', (reply: Reply) => {
      const job = this.#jobs.get(reply.id);
      this.#jobs.delete(reply.id);
      if (this.#jobs.size === 0) this.#worker.unref();
      if (!reply.error) job?.resolve(reply);
      else job?.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', () => this.#fail(new Error('fs worker exited')));
    // After the listeners: adding a 'message' listener refs the worker again.
    this.#worker.unref();
  }

  /** The slab was sent to this worker (a replacement worker needs it again). */
  hasSlab = false;

  /** A message with no answer. */
  tell(message: Message): void {
    if (!this.dead) this.#worker.postMessage({ id: -1, ...message });
  }

  ask(message: Message): Promise<Reply> {
    if (this.dead) return Promise.reject(new Error('fs worker exited'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ id, ...message });
    });
  }

  #fail(error: Error): void {
    this.dead = true;
    for (const job of this.#jobs.values()) job.reject(error);
    this.#jobs.clear();
  }
}

/**
 * Filesystem calls made in batches on worker threads. A 10,000-entry folder
 * costs ~25 ms of lstat syscalls; split over two cores it finishes in about
 * half, and the event loop spends well under a millisecond on it, so other
 * sessions never wait. A small download is one message instead of four
 * thread-pool round trips (open, fstat, read, close). Workers start on first
 * use; a dead one is replaced on next use.
 */
class FsWorkers {
  readonly #size = Math.min(2, availableParallelism());
  #workers: FsWorker[] = [];
  #turn = 0;

  #pool(): FsWorker[] {
    this.#workers = this.#workers.filter((w) => !w.dead);
    while (this.#workers.length < this.#size) this.#workers.push(new FsWorker());
    return this.#workers;
  }

  /** The next worker in turn, for a job one worker does alone. */
  #next(): FsWorker {
    const workers = this.#pool();
    return workers[this.#turn++ % workers.length]!;
  }

  async lstat(dir: string, names: readonly string[]): Promise<(LstatResult | undefined)[]> {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    // Batches handed out one at a time per worker: a small download queued
    // behind a 200,000-entry listing waits for one batch, not the whole
    // listing, and a worker that is slower (descheduled) simply takes fewer.
    const parts: LstatReply[] = [];
    let next = 0;
    const drain = async (worker: FsWorker): Promise<void> => {
      while (next < names.length) {
        const at = next;
        next += LSTAT_BATCH;
        parts[at / LSTAT_BATCH] = (await worker.ask({ op: 'lstat', prefix, names: names.slice(at, at + LSTAT_BATCH) })) as LstatReply;
      }
    };
    await Promise.all(this.#pool().map(drain));
    const out: (LstatResult | undefined)[] = [];
    for (const { nums, ids } of parts) {
      for (let i = 0; i < nums.length / FIELDS; i++) {
        const at = i * FIELDS;
        const kind = nums[at]!;
        out.push(
          kind < 0
            ? undefined
            : {
                kind: KINDS[kind]!,
                size: nums[at + 1]!,
                mtimeMs: nums[at + 2]!,
                mode: nums[at + 3]!,
                nlink: nums[at + 4]!,
                dev: ids[i * 2]!,
                ino: ids[i * 2 + 1]!,
              },
        );
      }
    }
    return out;
  }

  /** Names in the folder `dir` (host path), up to `limit`, skipping `hidden.prefix`…`hidden.suffix`. */
  async readNames(dir: string, limit: number, hidden: { prefix: string; suffix: string }): Promise<string[]> {
    return (await this.#next().ask({ op: 'names', dir, limit, hidden })).names ?? [];
  }

  /**
   * The file at host path `path` (a link in last place fails with ELOOP), read
   * whole when it is a regular file of at most `max` bytes. Fails with the
   * errno of open, fstat or read (`code` set, the message may name the path).
   */
  async readSmall(path: string, max: number): Promise<SmallRead> {
    const worker = this.#next();
    const slot = max <= SLOT_BYTES ? this.#takeSlot(worker) : undefined;
    let reply: ReadReply;
    try {
      reply = (await worker.ask({ op: 'read', path, max, ...(slot === undefined ? {} : { slot }) })) as ReadReply;
    } catch (error) {
      if (slot !== undefined) this.#freeSlots.push(slot);
      throw error;
    }
    const { kind, size, data } = reply;
    if (data) return { kind, size, data: Buffer.from(data) };
    if (reply.slot === undefined) {
      if (slot !== undefined) this.#freeSlots.push(slot);
      return { kind, size };
    }
    let held = true;
    const release = (): void => {
      if (held) this.#freeSlots.push(reply.slot!);
      held = false;
    };
    return { kind, size, data: Buffer.from(this.#slab!, reply.slot * SLOT_BYTES, size), release };
  }

  #slab: SharedArrayBuffer | undefined;
  #freeSlots: number[] = [];

  /** A free slot of the slab (made on first use) for `worker`, or undefined when all are in use. */
  #takeSlot(worker: FsWorker): number | undefined {
    if (!this.#slab) {
      this.#slab = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
      this.#freeSlots = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
    }
    const slot = this.#freeSlots.pop();
    if (slot !== undefined && !worker.hasSlab) {
      worker.tell({ op: 'slab', slab: this.#slab });
      worker.hasSlab = true;
    }
    return slot;
  }
}

export const fsWorkers = new FsWorkers();
