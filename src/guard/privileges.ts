import { readFileSync } from 'node:fs';
import { access, chown, constants, mkdir, stat } from 'node:fs/promises';
import { parseHostPort, type MoatConfig } from '../config/schema.js';
import { isLoopback } from './networks.js';

/** The unprivileged identity to run as, resolved from "user" or "user:group" (names or numbers). */
export interface RunAs {
  user: string;
  uid: number;
  group: string;
  gid: number;
}

function table(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

export function resolveRunAs(spec: string): RunAs {
  const [userPart = '', groupPart, extra] = spec.split(':');
  if (!userPart || extra !== undefined) throw new Error(`run_as: expected "user" or "user:group", got "${spec}"`);
  const passwd = table('/etc/passwd');
  const pw = /^\d+$/.test(userPart) ? passwd.find((r) => r[2] === userPart) : passwd.find((r) => r[0] === userPart);
  if (!pw && !/^\d+$/.test(userPart)) throw new Error(`run_as: no such user "${userPart}"`);
  const uid = pw ? Number(pw[2]) : Number(userPart);
  let gid = pw ? Number(pw[3]) : uid;
  const groups = table('/etc/group');
  if (groupPart !== undefined && groupPart !== '') {
    const gr = /^\d+$/.test(groupPart) ? groups.find((r) => r[2] === groupPart) : groups.find((r) => r[0] === groupPart);
    if (!gr && !/^\d+$/.test(groupPart)) throw new Error(`run_as: no such group "${groupPart}"`);
    gid = gr ? Number(gr[2]) : Number(groupPart);
  }
  const group = groups.find((r) => Number(r[2]) === gid)?.[0] ?? String(gid);
  if (uid === 0) throw new Error('run_as: must name an unprivileged user, not root');
  return { user: pw?.[0] ?? String(uid), uid, group, gid };
}

/** Every address Moat listens on (control and implicit TLS). */
function listenHosts(config: MoatConfig): string[] {
  const all = [...config.listen.map((l) => (typeof l === 'string' ? l : l.address)), ...config.tls.implicit_listen];
  return all.map((a) => parseHostPort(a)?.host ?? a);
}

export type RootDecision =
  | { action: 'none' }
  | { action: 'drop'; runAs: RunAs }
  | { action: 'stay'; warning: string }
  | { action: 'refuse'; message: string };

/**
 * What to do about privileges, decided before anything is bound:
 * - not root: nothing (run_as is ignored with a warning by the caller);
 * - root with run_as: bind, then switch to that user and group;
 * - root without run_as, with allow_root: stay root, with a warning;
 * - root without run_as, every listener on loopback: stay root, with a
 *   warning (nobody off this machine can reach it; the quick start and test
 *   setups run this way);
 * - root without run_as, any listener reachable from the network: refuse.
 */
export function rootDecision(config: MoatConfig, uid = process.getuid?.() ?? -1): RootDecision {
  if (uid !== 0) return { action: 'none' };
  if (config.run_as) return { action: 'drop', runAs: resolveRunAs(config.run_as) };
  if (config.allow_root) {
    return { action: 'stay', warning: 'running as root because allow_root is set; set run_as to drop privileges after binding' };
  }
  const exposed = listenHosts(config).filter((h) => !isLoopback(h));
  if (exposed.length === 0) {
    return {
      action: 'stay',
      warning: 'running as root on loopback listeners only; set run_as (or --run-as USER) to drop privileges, or allow_root to silence this',
    };
  }
  return {
    action: 'refuse',
    message:
      `refusing to run as root while listening on ${exposed.join(', ')}: ` +
      'set run_as = "user[:group]" (or --run-as USER) to drop privileges after binding, or allow_root = true (--allow-root) to run as root anyway',
  };
}

/**
 * Before dropping privileges: make what Moat writes later (the state folder
 * with bans.json, the users file it re-reads, a root folder it just created,
 * and `own`: its self-signed certificate) belong to the unprivileged user.
 * Returns what it changed, for the log.
 */
export async function prepareFor(
  runAs: RunAs,
  paths: { stateDir: string; usersFile: string; bansFile: string; root: string; own?: string[] },
): Promise<string[]> {
  const changed: string[] = [];
  const own = async (path: string) => {
    const s = await stat(path).catch(() => undefined);
    if (!s || (s.uid === runAs.uid && s.gid === runAs.gid)) return;
    await chown(path, runAs.uid, runAs.gid);
    changed.push(path);
  };
  const rootExisted = await access(paths.root, constants.F_OK).then(
    () => true,
    () => false,
  );
  if (!rootExisted) {
    await mkdir(paths.root, { recursive: true });
    await own(paths.root);
  }
  await mkdir(paths.stateDir, { recursive: true, mode: 0o700 });
  await own(paths.stateDir);
  await own(paths.bansFile);
  await own(paths.usersFile);
  for (const path of paths.own ?? []) await own(path);
  return changed;
}

/** Switch the whole process to `runAs`: supplementary groups, group, then user (in that order). */
export function dropPrivileges(runAs: RunAs): void {
  process.setgroups?.([runAs.gid]);
  process.setgid?.(runAs.gid);
  process.setuid?.(runAs.uid);
  if (process.getuid?.() === 0 || process.geteuid?.() === 0 || process.getgid?.() === 0) {
    throw new Error('could not drop root privileges');
  }
}
