import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
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
});

test('weaker-than-default settings are each named for the start-up warning; the defaults name none', () => {
  assert.deepEqual(weakerOptions(validateConfig({})), []);
  assert.deepEqual(weakerOptions(validateConfig({ tls: { cert: '/c.pem', key: '/k.pem' } })), []);
  const weak = validateConfig({
    active: { allow_foreign_hosts: true, allow_low_ports: true },
    anonymous: { enabled: true, allow_plaintext: true },
    tls: { cert: '/c.pem', key: '/k.pem', control: 'optional', data_session: 'off' },
    guard: { failed_login_delay_ms: 0 },
    timeouts: { idle: 0, stalled_transfer: 0 },
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
    ],
  );
  assert.deepEqual(weakerOptions(validateConfig({ tls: { cert: '/c.pem', key: '/k.pem', control: 'required', data: 'optional' } })).map((w) => w.key), ['tls.data']);
  // Anonymous in clear is an exception only where logins otherwise need TLS.
  const anonymous = { enabled: true, allow_plaintext: true };
  const keys = (raw: Record<string, unknown>) => weakerOptions(validateConfig(raw)).map((w) => w.key);
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
