import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

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

const FIELDS = 5;
const KINDS = ['file', 'dir', 'link', 'other'] as const;

/*
 * The worker's source, plain CommonJS: a worker cannot load this project's
 * TypeScript under tsx, and the code is small enough to read here. It lstats
 * every name it is sent (synchronously: it has no loop to keep free) and
 * answers with transferable typed arrays. A kind of -1 means the entry vanished.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { lstatSync } = require('node:fs');
parentPort.on('message', ({ id, prefix, names }) => {
  const nums = new Float64Array(names.length * ${FIELDS});
  const ids = new BigUint64Array(names.length * 2);
  try {
    for (let i = 0; i < names.length; i++) {
      const st = lstatSync(prefix + names[i], { bigint: true, throwIfNoEntry: false });
      const at = i * ${FIELDS};
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
  } catch (error) {
    parentPort.postMessage({ id, error: { code: error.code, message: error.message } });
  }
});
`;

interface Reply {
  id: number;
  nums: Float64Array;
  ids: BigUint64Array;
  error?: { code?: string; message: string };
}

interface Job {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

/** One worker and the jobs it holds. Referenced only while it holds some: idle, it never keeps the process alive. */
class StatWorker {
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
    this.#worker.on('exit', () => this.#fail(new Error('stat worker exited')));
    // After the listeners: adding a 'message' listener refs the worker again.
    this.#worker.unref();
  }

  ask(prefix: string, names: string[]): Promise<Reply> {
    if (this.dead) return Promise.reject(new Error('stat worker exited'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ id, prefix, names });
    });
  }

  #fail(error: Error): void {
    this.dead = true;
    for (const job of this.#jobs.values()) job.reject(error);
    this.#jobs.clear();
  }
}

/**
 * lstat of many names in one folder on worker threads. A 10,000-entry folder
 * costs ~25 ms of syscalls; split over two cores it finishes in about half,
 * and the event loop spends well under a millisecond on it, so other sessions
 * never wait. Workers start on first use; a dead one is replaced on next use.
 */
class StatWorkers {
  readonly #size = Math.min(2, availableParallelism());
  #workers: StatWorker[] = [];

  async lstat(dir: string, names: readonly string[]): Promise<(LstatResult | undefined)[]> {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    this.#workers = this.#workers.filter((w) => !w.dead);
    while (this.#workers.length < this.#size) this.#workers.push(new StatWorker());
    const per = Math.ceil(names.length / this.#workers.length);
    const parts = await Promise.all(this.#workers.map((w, i) => w.ask(prefix, names.slice(i * per, (i + 1) * per))));
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
}

export const statWorkers = new StatWorkers();
