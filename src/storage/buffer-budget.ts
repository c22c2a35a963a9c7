/**
 * What all transfers together may hold in large reusable buffers (download
 * read-ahead, upload receive rings). A transfer asks for buffers of the size it
 * would like; while the budget lasts it gets them, once it is spent it gets the
 * floor, so every transfer keeps moving and a thousand concurrent ones cannot
 * hold gigabytes.
 */
export class BufferBudget {
  #inUse = 0;

  constructor(
    readonly limit: number,
    readonly floor: number,
  ) {}

  get inUse(): number {
    return this.#inUse;
  }

  /**
   * The size of each of `count` buffers of up to `wanted` bytes, counted as in
   * use until `release(count * size)`.
   */
  take(wanted: number, count: number): number {
    const size = wanted <= this.floor ? wanted : Math.max(this.floor, Math.min(wanted, Math.floor((this.limit - this.#inUse) / count)));
    this.#inUse += size * count;
    return size;
  }

  release(bytes: number): void {
    this.#inUse -= bytes;
  }
}

/** Shared by every transfer of the process: 64 MiB of large buffers, then 256 KiB each. */
export const transferBuffers = new BufferBudget(64 * 1024 * 1024, 256 * 1024);
