import { StorageError, type VirtualPath } from './types.js';

export const ROOT = '/' as VirtualPath;

/**
 * Resolve a client-supplied path against the current directory, purely
 * lexically. '..' never climbs above '/', backslashes are separators (Windows
 * clients send them), and NUL or control characters are refused outright.
 * Percent-encodings are not decoded: `%2e%2e` is a literal file name.
 */
export function resolveVirtual(cwd: VirtualPath, input: string): VirtualPath {
  if (/[\u0000-\u001f\u007f]/.test(input)) {
    throw new StorageError('invalid-path', 'path contains control characters');
  }
  const raw = input.replace(/\\/g, '/');
  const start = raw.startsWith('/') ? [] : cwd.split('/').filter(Boolean);
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') start.pop();
    else start.push(segment);
  }
  return ('/' + start.join('/')) as VirtualPath;
}

export function basename(path: VirtualPath): string {
  const i = path.lastIndexOf('/');
  return path.slice(i + 1);
}

export function parent(path: VirtualPath): VirtualPath {
  const i = path.lastIndexOf('/');
  return (i <= 0 ? '/' : path.slice(0, i)) as VirtualPath;
}

export function join(dir: VirtualPath, name: string): VirtualPath {
  return resolveVirtual(dir, name.replace(/^\/+/, ''));
}

/** Segments of a virtual path, for mapping onto a host path inside a jail. */
export function segments(path: VirtualPath): string[] {
  return path.split('/').filter(Boolean);
}
