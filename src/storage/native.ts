import { createRequire } from 'node:module';

/** The native helper's surface (native/*.c, one module). */
export interface NativeHelper {
  /** sendfile.c: sends on a thread of its own; `done` runs once it stopped. */
  start(socketFd: number, fileFd: number, offset: number, length: number, done: (errno: number, sent: number) => void): object;
  /** sendfile.c: an upload from a socket into a file on a thread of its own (offset -1: append; limit -1: none). */
  receive(socketFd: number, fileFd: number, offset: number, limit: number, done: (errno: number, moved: number, flags: number) => void): object;
  /** Bytes a running job has moved. */
  sent(handle: object): number;
  cancel(handle: object): void;
  /** list.c: readdir, sort and lstat of a folder on threads of their own. */
  list(
    dir: string,
    limit: number,
    hiddenPrefix: string,
    hiddenSuffix: string,
    done: (errno: number, namesAndUniques?: Buffer, nums?: ArrayBuffer) => void,
  ): void;
  /** format.c: whether formatLines renders every entry of this listing exactly as src/listing/format.ts. */
  formattable(namesAndUniques: Buffer, nums: Float64Array): boolean;
  /** format.c: the next chunk of lines from `cursor` ([entry, byte offset], moved on), undefined at the end. */
  formatLines(
    namesAndUniques: Buffer,
    nums: Float64Array,
    cursor: Float64Array,
    format: number,
    nowMs: number,
    showHidden: boolean,
    facts: number,
    perms: string[],
  ): Buffer | undefined;
  /** socket.c: the socket's pending error (SO_ERROR, cleared by reading it), 0 when none. */
  socketError(fd: number): number;
}

/** Where `npm install` builds it (scripts/build-native.mjs), from src/ and dist/ alike. */
const HELPER = '../../native/build/moat.node';

let helper: NativeHelper | null | undefined;
let unavailable = '';

/**
 * The native helper, loaded once; null where it is not built (no compiler at
 * install time, not Linux), with the reason in `nativeStatus()`. Everything it
 * does has a JavaScript path that gives the same results, slower.
 */
export function nativeHelper(): NativeHelper | null {
  if (helper !== undefined) return helper;
  helper = null;
  // A switch for diagnosis (and for the tests of the JavaScript paths): docs/configuration.md.
  if (process.env.MOAT_NATIVE === '0') unavailable = 'MOAT_NATIVE=0 in the environment';
  else if (process.platform !== 'linux') unavailable = 'the native helper is built on Linux only';
  else {
    try {
      helper = createRequire(import.meta.url)(HELPER) as NativeHelper;
    } catch (error) {
      unavailable = `native helper not built (${(error as Error).message.split('\n')[0]}); run npm install with a C compiler`;
    }
  }
  return helper;
}

/** Whether this process has the native helper (sendfile downloads, threaded listings), and why not. */
export function nativeStatus(): { available: boolean; reason: string } {
  const available = nativeHelper() !== null;
  return { available, reason: available ? '' : unavailable };
}
