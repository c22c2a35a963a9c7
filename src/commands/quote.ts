/** RFC 959 path quoting for 257 replies: the path in quotes, inner quotes doubled. */
export function quotePath(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}
