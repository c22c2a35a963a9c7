import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { flagsToConfig } from '../src/cli/serve-options.js';
import { ConfigError, loadConfig, validateConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { weakerOptions } from '../src/config/weaker.js';

/** Every leaf key of the schema, dotted, including optional keys without defaults. */
function leafKeys(): string[] {
  const keys: string[] = [];
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(defaults)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) keys.push(...Object.keys(v).map((sub) => `${k}.${sub}`));
    else keys.push(k);
  }
  return [...keys, 'tls.control', 'tls.data'];
}

test('every option is documented in docs/configuration.md and shown in moat.example.toml', async () => {
  const docs = await readFile(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const example = await readFile(new URL('../moat.example.toml', import.meta.url), 'utf8');
  for (const key of leafKeys()) {
    assert.ok(docs.includes('`' + key + '`'), `${key} missing from docs/configuration.md`);
    const name = key.split('.').at(-1)!;
    assert.match(example, new RegExp(`^#? ?${name} = `, 'm'), `${key} missing from moat.example.toml`);
  }
});

test('the example config validates', async () => {
  const config = await loadConfig(new URL('../moat.example.toml', import.meta.url).pathname);
  assert.equal(config.passive.ports, '40000-40999');
});

test('errors name the key and the reason; unknown keys are errors', () => {
  const attempt = (raw: Record<string, unknown>) => {
    try {
      validateConfig(raw);
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems;
    }
  };
  assert.deepEqual(attempt({ bogus: 1 }), ['bogus: unknown key']);
  assert.deepEqual(attempt({ passive: { extra: true } }), ['passive.extra: unknown key']);
  assert.match(attempt({ passive: { ports: '80-90' } })[0]!, /^passive\.ports: /);
  assert.match(attempt({ listen: ['nowhere'] })[0]!, /^listen\.0: .*HOST:PORT/);
  assert.match(attempt({ timeouts: { idle: -1 } })[0]!, /^timeouts\.idle: /);
  assert.match(attempt({ guard: { deny: ['10.0.0.0/33'] } })[0]!, /^guard\.deny\.0: /);
  assert.match(attempt({ passive: { enabled: false }, active: { enabled: false } })[0]!, /at least one/);
  assert.match(attempt({ tls: { cert: '/c', key: '/k', control: 'off', implicit_listen: ['127.0.0.1:990'] } })[0]!, /^tls\.implicit_listen: .*not "off"/);
  assert.match(attempt({ tls: { cert: '/c', key: '/k', control: 'off', data: 'required' } })[0]!, /^tls\.data: .*not "off"/);
  // A duration that is not a number says so; one out of range gives the range.
  assert.deepEqual(attempt({ timeouts: { idle: 'x', login: 0, data_connect: 2.5, stalled_transfer: 99_999 } }).sort(), [
    'timeouts.data_connect: expected a whole number of seconds',
    'timeouts.idle: expected a whole number of seconds',
    'timeouts.login: expected 1 to 86400 seconds',
    'timeouts.stalled_transfer: expected 0 to 86400 seconds',
  ]);
});

test('asking for TLS without a certificate is an error, never a server in clear', () => {
  const attempt = (tls: Record<string, unknown>) => {
    try {
      validateConfig({ tls });
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems;
    }
  };
  assert.match(attempt({ control: 'required' }).join('\n'), /^tls\.control: "required" needs a certificate/);
  assert.match(attempt({ control: 'optional' }).join('\n'), /^tls\.control: "optional" needs a certificate/);
  assert.match(attempt({ data: 'required' }).join('\n'), /^tls\.data: "required" needs a certificate/);
  assert.deepEqual(attempt({ control: 'off' }), []);
  assert.deepEqual(attempt({ control: 'required', generate_self_signed: true }), []);
  assert.deepEqual(attempt({ control: 'required', cert: '/c.pem', key: '/k.pem' }), []);
});

test('values checked beyond their type: ciphers, public hosts, homes, run_as, ban lengths, listeners', () => {
  const first = (raw: Record<string, unknown>) => {
    try {
      validateConfig(raw);
      return '';
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems.join('\n');
    }
  };
  assert.match(first({ tls: { cert: '/c', key: '/k', ciphers: 'NOT-A-CIPHER' } }), /^tls\.ciphers: OpenSSL accepts none/);
  assert.equal(first({ tls: { cert: '/c', key: '/k', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } }), '');
  assert.match(first({ passive: { public_host: 'not a host!!' } }), /^passive\.public_host: expected an IPv4 address or a host name/);
  assert.match(first({ passive: { public_host: '2001:db8::1' } }), /^passive\.public_host: PASV can only announce IPv4/);
  assert.match(first({ listen: [{ address: '127.0.0.1:21', public_host: '-bad-.example' }] }), /^listen\.0\.public_host: /);
  for (const good of ['203.0.113.7', 'ftp.example.com', 'localhost', '']) assert.equal(first({ passive: { public_host: good } }), '', good);
  assert.match(first({ anonymous: { home: '../../etc' } }), /^anonymous\.home: .*'\.\.'/);
  assert.match(first({ anonymous: { home: '/srv/pub' } }), /^anonymous\.home: .*relative/);
  assert.match(first({ run_as: 'a:b:c' }), /^run_as: expected "user" or "user:group"/);
  assert.equal(first({ run_as: 'ftp:ftp' }), '');
  assert.match(first({ guard: { ban_duration: 7200, ban_max_duration: 3600 } }), /^guard\.ban_duration: 7200 s is longer than guard\.ban_max_duration/);
  assert.match(first({ guard: { ban_window: 0 } }), /^guard\.ban_window: /);
  assert.match(first({ listen: ['127.0.0.1:2121', 'localhost:2121'] }), /localhost:2121 is given twice/);
  assert.match(first({ listen: ['127.0.0.1:2121'], tls: { cert: '/c', key: '/k', implicit_listen: ['127.0.0.1:2121'] } }), /127\.0\.0\.1:2121 is given twice/);
});

test('a section given as a plain value in the file is reported, not replaced by the flags\' empty table', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'moat-config-'));
  try {
    for (const [text, key] of [['active = false', 'active'], ['tls = "required"', 'tls'], ['anonymous = true', 'anonymous'], ['passive = 1', 'passive']] as const) {
      const file = join(dir, 'moat.toml');
      await writeFile(file, text + '\n');
      await assert.rejects(loadConfig(file, flagsToConfig({})), (e: unknown) => e instanceof ConfigError && e.problems[0]!.startsWith(`${key}: `), text);
    }
    // Given flags still win over a file's valid table.
    await writeFile(join(dir, 'moat.toml'), '[active]\nenabled = true\n');
    assert.equal((await loadConfig(join(dir, 'moat.toml'), flagsToConfig({ active: false }))).active.enabled, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('weaker-than-default settings are each named for the start-up warning; the defaults name none', () => {
  const keys = (raw: Record<string, unknown>) => weakerOptions(validateConfig(raw)).map((w) => w.key);
  assert.deepEqual(weakerOptions(validateConfig({})), []);
  assert.deepEqual(weakerOptions(validateConfig({ tls: { cert: '/c.pem', key: '/k.pem' } })), []);
  const weak = validateConfig({
    active: { allow_foreign_hosts: true, allow_low_ports: true },
    anonymous: { enabled: true, allow_plaintext: true },
    tls: { cert: '/c.pem', key: '/k.pem', control: 'optional', data_session: 'off' },
    guard: { failed_login_delay_ms: 0, ban_duration: 0, never_ban: ['127.0.0.1', '10.0.0.0/8'] },
    timeouts: { idle: 0, stalled_transfer: 0 },
    limits: { listing_timeout: 0 },
  });
  assert.deepEqual(
    weakerOptions(weak).map((w) => w.key),
    [
      'active.allow_foreign_hosts',
      'active.allow_low_ports',
      'anonymous.enabled',
      'tls.control',
      'tls.data_session',
      'guard.failed_login_delay_ms',
      'timeouts.idle',
      'timeouts.stalled_transfer',
      'guard.ban_duration',
      'guard.never_ban',
      'limits.listing_timeout',
    ],
  );
  assert.deepEqual(keys({ tls: { cert: '/c.pem', key: '/k.pem', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } }), ['tls.ciphers']);
  assert.deepEqual(weakerOptions(validateConfig({ tls: { cert: '/c.pem', key: '/k.pem', control: 'required', data: 'optional' } })).map((w) => w.key), ['tls.data']);
  // Anonymous in clear is an exception only where logins otherwise need TLS.
  const anonymous = { enabled: true, allow_plaintext: true };
  assert.deepEqual(keys({ anonymous, tls: { cert: '/c.pem', key: '/k.pem' } }), ['anonymous.enabled', 'anonymous.allow_plaintext']);
  assert.deepEqual(keys({ anonymous, tls: { generate_self_signed: true } }), ['anonymous.enabled', 'anonymous.allow_plaintext']);
  assert.deepEqual(keys({ anonymous }), ['anonymous.enabled']);
  assert.deepEqual(keys({ tls: { generate_self_signed: true, control: 'optional' } }), ['tls.control']);
  // tls.control unset is "required" with a certificate: optional data is then weaker too.
  assert.deepEqual(keys({ tls: { cert: '/c.pem', key: '/k.pem', data: 'optional' } }), ['tls.data']);
});

test('timeouts: 0 turns off idle and stalled-transfer timeouts, and is refused where a wait must end', () => {
  assert.equal(validateConfig({ timeouts: { idle: 0, stalled_transfer: 0 } }).timeouts.idle, 0);
  for (const key of ['login', 'data_connect', 'tls_handshake']) {
    assert.throws(() => validateConfig({ timeouts: { [key]: 0 } }), (e: unknown) => e instanceof ConfigError && e.message.includes(`timeouts.${key}`));
  }
});
