import { ALL_PERMISSIONS, type PermissionLetter } from './types.js';

const DESCRIPTIONS: Record<PermissionLetter, string> = {
  e: 'change directory (CWD, CDUP)',
  l: 'list files (LIST, NLST, MLSD, MLST, STAT, SIZE, MDTM)',
  r: 'download files (RETR)',
  a: 'append to files (APPE)',
  d: 'delete files and directories (DELE, RMD)',
  f: 'rename files and directories (RNFR, RNTO)',
  m: 'create directories (MKD)',
  w: 'upload files (STOR, STOU)',
  M: 'change file mode (SITE CHMOD)',
  T: 'change modification time (MFMT)',
};

export class PermissionError extends Error {
  override readonly name = 'PermissionError';
}

export function isPermissionLetter(c: string): c is PermissionLetter {
  return c.length === 1 && ALL_PERMISSIONS.includes(c);
}

/** The problem with a permission string, or null when it is valid. */
export function checkPermissions(letters: string): string | null {
  const seen = new Set<string>();
  for (const c of letters) {
    if (!isPermissionLetter(c)) {
      return `unknown permission letter ${JSON.stringify(c)} in "${letters}" (allowed: ${ALL_PERMISSIONS})`;
    }
    if (seen.has(c)) return `permission letter "${c}" appears twice in "${letters}"`;
    seen.add(c);
  }
  return null;
}

/**
 * Validate a permission string and return it in canonical order
 * (the order of ALL_PERMISSIONS), so equal sets always print the same.
 * The empty string is valid: such a user can log in and do nothing.
 */
export function parsePermissions(letters: string): string {
  const problem = checkPermissions(letters);
  if (problem) throw new PermissionError(problem);
  return [...ALL_PERMISSIONS].filter((c) => letters.includes(c)).join('');
}

/** Every letter with what it allows and whether `letters` grants it, for `moat user show`. */
export function describePermissions(letters: string): { letter: PermissionLetter; description: string; granted: boolean }[] {
  return [...ALL_PERMISSIONS].filter(isPermissionLetter).map((letter) => ({
    letter,
    description: DESCRIPTIONS[letter],
    granted: letters.includes(letter),
  }));
}
