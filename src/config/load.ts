import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { checkConfig, configSchema, type MoatConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Keys holding file paths: relative values in a file are taken from the file's folder. */
const PATH_KEYS: Array<[string, ...string[]]> = [['root'], ['state_dir'], ['users_file'], ['log_file'], ['tls', 'cert'], ['tls', 'key']];

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** True when a tree holds no defined value at any depth (flags that were not given). */
function isBlank(v: Tree): boolean {
  return Object.values(v).every((x) => x === undefined || (isTree(x) && isBlank(x)));
}

/**
 * Overrides win over the file, key by key; arrays are replaced whole. A
 * section the file gives as a plain value (`active = false`) is kept as it is,
 * so validation reports it instead of a flag's table silently replacing it.
 */
export function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    if (!isTree(v)) out[k] = v;
    else if (isTree(out[k])) out[k] = merge(out[k] as Tree, v);
    else if (out[k] === undefined && !isBlank(v)) out[k] = v;
  }
  return out;
}

function resolvePaths(tree: Tree, baseDir: string): void {
  for (const path of PATH_KEYS) {
    let node: unknown = tree;
    for (const key of path.slice(0, -1)) node = isTree(node) ? node[key] : undefined;
    const last = path[path.length - 1]!;
    if (isTree(node) && typeof node[last] === 'string' && node[last] !== '' && !isAbsolute(node[last] as string)) {
      node[last] = resolve(baseDir, node[last] as string);
    }
  }
}

function describe(issue: z.core.$ZodIssue): string {
  const at = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${at ? at + '.' : ''}${k}: unknown key`).join('\n');
  }
  return `${at || '(top level)'}: ${issue.message}`;
}

/** Validate a raw tree (from TOML, flags or an embedder) into a full config, or throw ConfigError. */
export function validateConfig(raw: Tree): MoatConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(result.error.issues.flatMap((i) => describe(i).split('\n')));
  const problems = checkConfig(result.data);
  if (problems.length) throw new ConfigError(problems);
  return result.data;
}

/**
 * Load `file` (if any), lay `overrides` (CLI flags, relative paths taken from
 * the working directory) over it, and validate the result.
 */
export async function loadConfig(file: string | undefined, overrides: Tree = {}): Promise<MoatConfig> {
  let fromFile: Tree = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError([`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
    }
    try {
      fromFile = parseToml(text) as Tree;
    } catch (error) {
      throw new ConfigError([`${file}: invalid TOML: ${(error as Error).message.split('\n')[0]}`]);
    }
    resolvePaths(fromFile, dirname(resolve(file)));
  }
  resolvePaths(overrides, process.cwd());
  return validateConfig(merge(fromFile, overrides));
}
