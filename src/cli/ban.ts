import type { Command } from 'commander';
import { BanStore, bansFileOf, invalidBansText, type BanRecord } from '../guard/bans.js';
import { canonicalIp, NetworkList } from '../guard/networks.js';
import { stateConfigOf, stateDirOf } from './state-dir.js';
import { CliError } from './user.js';

interface BanFlags {
  config?: string;
  stateDir?: string;
}

/** The ban table of the configured state folder; a running server picks changes up within a second. */
async function store(flags: BanFlags): Promise<BanStore> {
  const stateDir = await stateDirOf(flags);
  let bans: BanStore;
  try {
    bans = await BanStore.open(bansFileOf(stateDir));
  } catch (error) {
    throw new CliError(`${bansFileOf(stateDir)}: ${(error as Error).message}`);
  }
  const invalid = bans.takeInvalid();
  if (invalid > 0) process.stderr.write(`moat: warning: ${bans.file}: ${invalidBansText(invalid)}\n`);
  return bans;
}

function ipArg(ip: string): string {
  const key = canonicalIp(ip);
  if (!key) throw new CliError(`not an IP address: ${ip}`);
  return key;
}

function row(r: BanRecord, now: number): string {
  const left = Math.max(0, Math.ceil((Date.parse(r.until) - now) / 1000));
  const state = left > 0 ? `${left}s left` : 'expired';
  return `${r.ip}\tuntil ${r.until} (${state})\toffence ${r.offences}\t${r.reason}`;
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file, for its state_dir')
    .option('--state-dir <dir>', 'state folder holding bans.json (default: from the configuration, ./.moat)');
}

export function registerBanCommands(program: Command): void {
  const ban = program.command('ban').description('list, add or lift bans (the running server picks changes up within a second)');
  common(ban.command('list').description('show banned addresses'))
    .option('--all', 'also show expired bans still remembered for repeat offences')
    .option('--json', 'print JSON')
    .action(async (flags: BanFlags & { all?: boolean; json?: boolean }) => {
      const now = Date.now();
      const list = (await store(flags)).list(now, flags.all);
      if (flags.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else if (list.length === 0) process.stdout.write('no bans\n');
      else process.stdout.write(list.map((r) => row(r, now)).join('\n') + '\n');
    });
  common(ban.command('add').argument('<ip>', 'IPv4 or IPv6 address').description('ban an address'))
    .option('--duration <seconds>', 'how long, in seconds', '3600')
    .option('--reason <text>', 'why (kept in bans.json and the log)', 'added by moat ban')
    .action(async (ip: string, flags: BanFlags & { duration: string; reason: string }) => {
      const key = ipArg(ip);
      if (!/^\d+$/.test(flags.duration) || Number(flags.duration) < 1) throw new CliError('--duration: expected a whole number of seconds >= 1');
      // A year of seconds: anything longer is a typo (and would overflow the ban's end date).
      if (Number(flags.duration) > 366 * 24 * 3600) throw new CliError('--duration: at most 31622400 seconds (a year)');
      const bans = await store(flags);
      const r = bans.ban(key, Number(flags.duration), flags.reason);
      await bans.save();
      process.stdout.write(`banned ${r.ip} until ${r.until}\n`);
      // never_ban keeps the guard's automatic bans off these networks; an operator's own ban still applies.
      if (new NetworkList((await stateConfigOf(flags)).guard.never_ban).has(key)) {
        process.stderr.write(`moat: warning: ${key} is in guard.never_ban, which only stops automatic bans: this one applies\n`);
      }
    });
  common(ban.command('del').alias('rm').argument('<ip>', 'IPv4 or IPv6 address').description('lift a ban and forget its history'))
    .action(async (ip: string, flags: BanFlags) => {
      const key = ipArg(ip);
      const bans = await store(flags);
      if (!bans.remove(key)) throw new CliError(`${key} is not banned`);
      await bans.save();
      process.stdout.write(`unbanned ${key}\n`);
    });
}
