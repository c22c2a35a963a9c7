import type { Command } from 'commander';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
/**
 * A decimal number (-5, 2.5) becomes one, so validation names the key with the
 * real reason (range, not an integer); anything else ("0x10", "1e3", "12abc")
 * is passed on as given and reported as not a number.
 */
const num = (value: string): number | string => (/^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value);

/** The flags shared by `moat serve` and `moat check-config`. */
export function addServeOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file (TOML); flags override its values')
    .option('--listen <host:port>', 'control listener, repeatable; IPv6 as [::1]:2121 (default 127.0.0.1:2121)', collect)
    .option('--root <dir>', 'server root: every home lives inside it (default ./ftp-data)')
    .option('--users <file>', 'users file (default <state-dir>/users.json)')
    .option('--state-dir <dir>', 'where Moat keeps its own state: users, bans, certificates (default ./.moat)')
    .option('--pasv-ports <min-max>', 'passive port range (default 40000-40999)')
    .option('--public-host <addr>', 'address announced in PASV replies, for servers behind NAT')
    .option('--idle-timeout <seconds>', 'close idle control connections after this long (default 300)', num)
    .option('--no-active', 'disable active mode (PORT/EPRT)')
    .option('--no-passive', 'disable passive mode (PASV/EPSV)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default info)')
    .option('--log-file <file>', 'write JSON log lines to this file instead of stdout')
    .option('--banner <text>', 'greeting text after 220')
    .option('--anonymous', 'allow anonymous read-only logins (user "anonymous" or "ftp")')
    .option('--max-clients <n>', 'most control connections at once (default 1000)', num)
    .option('--max-clients-per-ip <n>', 'most control connections from one address (default 50)', num)
    .option('--tls-cert <file>', 'TLS certificate chain (PEM); enables FTPS (TLS then required by default)')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option('--tls-self-signed', 'enable FTPS with a self-signed certificate generated once in <state-dir>/tls (needs openssl)')
    .option('--implicit-listen <host:port>', 'implicit FTPS listener (TLS first, usually port 990), repeatable', collect)
    .option('--tls <policy>', 'off, optional or required: TLS on control and data connections (default required with a certificate)');
}

export interface ServeFlags {
  config?: string;
  listen?: string[];
  root?: string;
  users?: string;
  stateDir?: string;
  pasvPorts?: string;
  publicHost?: string;
  idleTimeout?: number | string;
  active?: boolean;
  passive?: boolean;
  logLevel?: string;
  logFile?: string;
  banner?: string;
  anonymous?: boolean;
  maxClients?: number | string;
  maxClientsPerIp?: number | string;
  tlsCert?: string;
  tlsKey?: string;
  tlsSelfSigned?: boolean;
  implicitListen?: string[];
  tls?: string;
}

/** Flags as a config tree, with only what was given, so the file keeps the rest. */
export function flagsToConfig(f: ServeFlags): Record<string, unknown> {
  const tree: Record<string, unknown> = {
    listen: f.listen,
    root: f.root,
    users_file: f.users,
    state_dir: f.stateDir,
    log_level: f.logLevel,
    log_file: f.logFile,
    banner: f.banner,
    passive: { ports: f.pasvPorts, public_host: f.publicHost, enabled: f.passive === false ? false : undefined },
    active: { enabled: f.active === false ? false : undefined },
    timeouts: { idle: f.idleTimeout },
    anonymous: { enabled: f.anonymous ? true : undefined },
    limits: { max_clients: f.maxClients, max_clients_per_ip: f.maxClientsPerIp },
    tls: tlsFlags(f),
  };
  return tree;
}

/**
 * TLS flags: --tls sets control and data together (data has no "off": with
 * control off there is no TLS at all). Asking for TLS (--tls optional|required,
 * --implicit-listen, --tls-self-signed) without --tls-cert means a self-signed
 * certificate.
 */
function tlsFlags(f: ServeFlags): Record<string, unknown> {
  const wantsTls = f.tlsSelfSigned || (f.implicitListen?.length ?? 0) > 0 || f.tls === 'optional' || f.tls === 'required';
  return {
    cert: f.tlsCert,
    key: f.tlsKey,
    implicit_listen: f.implicitListen,
    control: f.tls,
    data: f.tls === 'optional' || f.tls === 'required' ? f.tls : undefined,
    generate_self_signed: !f.tlsCert && wantsTls ? true : undefined,
  };
}

/** The flag that sets each configuration key (for messages that name what was typed). */
const FLAG_OF_KEY: Readonly<Record<string, string>> = {
  listen: '--listen',
  root: '--root',
  users_file: '--users',
  state_dir: '--state-dir',
  log_level: '--log-level',
  log_file: '--log-file',
  banner: '--banner',
  run_as: '--run-as',
  'passive.ports': '--pasv-ports',
  'passive.public_host': '--public-host',
  'timeouts.idle': '--idle-timeout',
  'limits.max_clients': '--max-clients',
  'limits.max_clients_per_ip': '--max-clients-per-ip',
  'tls.cert': '--tls-cert',
  'tls.key': '--tls-key',
  'tls.implicit_listen': '--implicit-listen',
  'tls.control': '--tls',
  'tls.data': '--tls',
};

/**
 * A validation problem ("timeouts.idle: …") as the user wrote it: when the
 * value came from a flag, the flag leads ("--idle-timeout (timeouts.idle): …");
 * a value from the configuration file keeps its key alone.
 */
export function problemWithFlag(problem: string, given: Record<string, unknown>): string {
  const colon = problem.indexOf(': ');
  if (colon < 0) return problem;
  const path = problem.slice(0, colon).split('.');
  const key = path.filter((part) => !/^\d+$/.test(part)).join('.');
  const flag = FLAG_OF_KEY[key];
  let value: unknown = given;
  for (const part of path) value = (value as Record<string, unknown> | undefined)?.[part];
  return flag && value !== undefined ? `${flag} (${problem.slice(0, colon)})${problem.slice(colon)}` : problem;
}
