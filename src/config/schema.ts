import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { checkHome, checkPublicHost, isCidr } from './values.js';

/** "host:port" or "[v6]:port"; the host must be an IP literal or "localhost". */
export const hostPort = z.string().refine((s) => parseHostPort(s) !== null, {
  message: 'expected HOST:PORT with an IP address (or localhost) and a port up to 65535, e.g. 127.0.0.1:2121 or [::1]:2121',
});

export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const host = m[1]!;
  const port = Number(m[2]);
  if (port > 65535) return null;
  if (host !== 'localhost' && isIP(host) === 0) return null;
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

export function parsePortRange(s: string): { min: number; max: number } | null {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(s.trim());
  if (!m) return null;
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < 1024 || max > 65535 || min > max) return null;
  return { min, max };
}

const portRange = z.string().refine((s) => parsePortRange(s) !== null, {
  message: 'expected MIN-MAX with 1024 <= MIN <= MAX <= 65535, e.g. 40000-40100',
});

const cidr = z.string().refine(isCidr, { message: 'expected an IP address or CIDR, e.g. 192.168.1.0/24 or 2001:db8::/32' });

/** A refinement from a check that returns its problem as text (null = fine). */
const problemOf = (check: (s: string) => string | null) => (s: string, ctx: z.RefinementCtx) => {
  const problem = check(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};
const publicHost = z.string().superRefine(problemOf((s) => (s === '' ? null : checkPublicHost(s))));

export const DEFAULT_NEVER_BAN: readonly string[] = ['127.0.0.1', '::1'];

/** A duration in whole seconds; a value that is not a number says so, one out of range gives the range. */
const seconds = (def: number, min = 0) =>
  z
    .number({ error: (issue) => (issue.code === 'invalid_type' ? 'expected a whole number of seconds' : undefined) })
    .int({ error: 'expected a whole number of seconds' })
    .min(min, { error: `expected ${min} to 86400 seconds` })
    .max(86_400, { error: `expected ${min} to 86400 seconds` })
    .default(def);
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const tlsPolicy = z.enum(['off', 'optional', 'required']);
const dataSession = z.enum(['same-user', 'same-connection', 'off']);

const listener = z.union([
  hostPort,
  z.strictObject({
    address: hostPort,
    /** Passive address announced to clients of this listener (NAT), overriding passive.public_host. */
    public_host: publicHost.optional(),
  }),
]);

export const configSchema = z.strictObject({
  listen: z.array(listener).min(1).default(['127.0.0.1:2121']),
  root: z.string().min(1).default('./ftp-data'),
  state_dir: z.string().min(1).default('./.moat'),
  users_file: z.string().default(''),
  banner: z.string().max(200).refine((s) => !/[\r\n\0]/.test(s), 'must be one line').default('Moat FTP server ready.'),
  log_level: logLevel.default('info'),
  log_file: z.string().default(''),
  run_as: z
    .string()
    .refine((s) => s === '' || /^[^:\s]+(:[^:\s]+)?$/.test(s), 'expected "user" or "user:group"')
    .default(''),
  allow_root: z.boolean().default(false),

  passive: z
    .strictObject({
      enabled: z.boolean().default(true),
      ports: portRange.default('40000-40999'),
      public_host: publicHost.default(''),
    })
    .prefault({}),

  active: z
    .strictObject({
      enabled: z.boolean().default(true),
      allow_foreign_hosts: z.boolean().default(false),
      allow_low_ports: z.boolean().default(false),
    })
    .prefault({}),

  anonymous: z
    .strictObject({
      enabled: z.boolean().default(false),
      home: z.string().superRefine(problemOf(checkHome)).default('pub'),
      allow_plaintext: z.boolean().default(false),
    })
    .prefault({}),

  timeouts: z
    .strictObject({
      // A login, a data connection and a handshake must end: no 0 there.
      login: seconds(30, 1),
      idle: seconds(300),
      data_connect: seconds(30, 1),
      stalled_transfer: seconds(60),
      tls_handshake: seconds(15, 1),
    })
    .prefault({}),

  limits: z
    .strictObject({
      max_line_length: z.number().int().min(512).max(65_536).default(4096),
      max_oversize_lines: z.number().int().min(1).max(100).default(3),
      max_clients: z.number().int().min(1).max(1_000_000).default(1000),
      max_clients_per_ip: z.number().int().min(1).max(1_000_000).default(50),
      max_sessions_per_user: z.number().int().min(0).max(1_000_000).default(0),
      max_login_attempts: z.number().int().min(1).max(100).default(3),
      max_passive_listeners: z.number().int().min(1).max(65_535).default(1000),
      listing_max_entries: z.number().int().min(1).max(10_000_000).default(200_000),
      listing_timeout: seconds(30),
      commands_per_second: z.number().min(1).max(100_000).default(1000),
      command_burst: z.number().int().min(1).max(100_000).default(2000),
      max_upload_size: z.number().int().min(0).default(0),
    })
    .prefault({}),

  guard: z
    .strictObject({
      failed_login_delay_ms: z.number().int().min(0).max(30_000).default(1000),
      ban_threshold: z.number().int().min(1).max(10_000).default(10),
      ban_window: seconds(600, 1),
      ban_duration: seconds(900),
      ban_max_duration: z.number().int().min(1).max(31_536_000).default(604_800),
      allow: z.array(cidr).default([]),
      deny: z.array(cidr).default([]),
      /** Like fail2ban's ignoreip: the host itself is never banned (127.0.0.2 and the rest of 127/8 still can be). */
      never_ban: z.array(cidr).default([...DEFAULT_NEVER_BAN]),
    })
    .prefault({}),

  transfer: z
    .strictObject({
      sendfile: z.boolean().default(true),
    })
    .prefault({}),

  tls: z
    .strictObject({
      cert: z.string().default(''),
      key: z.string().default(''),
      control: tlsPolicy.optional(),
      data: z.enum(['optional', 'required']).optional(),
      data_session: dataSession.default('same-user'),
      implicit_listen: z.array(hostPort).default([]),
      min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
      ciphers: z.string().default(''),
      generate_self_signed: z.boolean().default(false),
    })
    .prefault({}),
});

export type MoatConfig = z.infer<typeof configSchema>;
export type ListenerConfig = MoatConfig['listen'][number];

/** Cross-field rules that a per-key schema cannot express. */
export function checkConfig(c: MoatConfig): string[] {
  const errors: string[] = [];
  if (!c.passive.enabled && !c.active.enabled) {
    errors.push('passive.enabled / active.enabled: at least one data connection mode must stay enabled');
  }
  if ((c.tls.cert === '') !== (c.tls.key === '')) {
    errors.push('tls.cert / tls.key: give both or neither');
  }
  if (c.tls.implicit_listen.length > 0 && c.tls.cert === '' && !c.tls.generate_self_signed) {
    errors.push('tls.implicit_listen: implicit TLS needs tls.cert and tls.key');
  }
  const hasCertificate = c.tls.cert !== '' || c.tls.generate_self_signed;
  if (!hasCertificate && c.tls.control !== undefined && c.tls.control !== 'off') {
    // Otherwise the server would start without TLS at all, in clear, while the file asks for it.
    errors.push(`tls.control: "${c.tls.control}" needs a certificate: set tls.cert and tls.key, or tls.generate_self_signed = true`);
  }
  if (!hasCertificate && c.tls.data !== undefined) {
    errors.push(`tls.data: "${c.tls.data}" needs a certificate: set tls.cert and tls.key, or tls.generate_self_signed = true`);
  }
  if (c.tls.ciphers !== '') {
    try {
      createSecureContext({ ciphers: c.tls.ciphers });
    } catch (error) {
      errors.push(`tls.ciphers: OpenSSL accepts none of ${JSON.stringify(c.tls.ciphers)} (${(error as Error).message})`);
    }
  }
  if (c.guard.ban_duration > c.guard.ban_max_duration) {
    errors.push(`guard.ban_duration: ${c.guard.ban_duration} s is longer than guard.ban_max_duration (${c.guard.ban_max_duration} s)`);
  }
  const addresses = [...c.listen.map((l) => (typeof l === 'string' ? l : l.address)), ...c.tls.implicit_listen];
  const seen = new Set<string>();
  for (const address of addresses) {
    const { host, port } = parseHostPort(address)!;
    // Port 0 is a fresh ephemeral port each time: never a clash.
    if (port === 0) continue;
    const key = `${host}|${port}`;
    if (seen.has(key)) errors.push(`listen / tls.implicit_listen: ${address} is given twice`);
    seen.add(key);
  }
  if (c.tls.implicit_listen.length > 0 && c.tls.control === 'off') {
    // Otherwise the implicit listeners would silently not start.
    errors.push('tls.implicit_listen: implicit TLS listeners need tls.control "optional" or "required", not "off"');
  }
  if (c.tls.data === 'required' && c.tls.control === 'off') {
    // Without TLS on the control connection there is no PROT P: the requirement would be silently dropped.
    errors.push('tls.data: "required" needs tls.control "optional" or "required", not "off"');
  }
  return errors;
}
