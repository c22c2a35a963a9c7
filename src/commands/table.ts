import type { CommandSpec } from './types.js';

/** Verb → command lookup, built once from the command families. */
export class CommandTable {
  private readonly byVerb = new Map<string, CommandSpec>();
  readonly specs: readonly CommandSpec[];

  constructor(specs: CommandSpec[]) {
    this.specs = specs;
    for (const spec of specs) {
      for (const verb of [spec.name, ...(spec.aliases ?? [])]) {
        if (this.byVerb.has(verb)) throw new Error(`command ${verb} registered twice`);
        this.byVerb.set(verb, spec);
      }
    }
  }

  get(verb: string): CommandSpec | undefined {
    return this.byVerb.get(verb);
  }
}

/**
 * The security commands of RFC 2228, for a server without TLS (or those TLS
 * does not offer): 502 even before login, where they belong (a client asks
 * AUTH first, and must learn it is not offered).
 */
export const SECURITY_VERBS = new Set(['AUTH', 'ADAT', 'PBSZ', 'PROT', 'CCC', 'MIC', 'CONF', 'ENC']);

/**
 * Verbs we know of but deliberately do not implement: 502 rather than 500. With
 * the checksum extensions clients try (XCRC, XMD5, XSHA1, ..., HASH): a hash of
 * a whole file on request is CPU a client could spend at will.
 */
export const UNIMPLEMENTED_VERBS = new Set([
  'SMNT', 'MAIL', 'MLFL', 'MSND', 'MSOM', 'MSAM', 'MRSQ', 'MRCP', 'XSEN', 'XSEM', 'LPRT', 'LPSV',
  'XCRC', 'XMD5', 'MD5', 'MMD5', 'XSHA', 'XSHA1', 'XSHA256', 'XSHA512', 'HASH',
  ...SECURITY_VERBS,
]);
