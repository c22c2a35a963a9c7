import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FileUserStore } from '../../src/auth/file-store.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/clients.js';

async function open(t: TestServer, from = '127.0.0.1'): Promise<{ c: RawClient; greeting: string }> {
  const c = await RawClient.connect(t.port, '127.0.0.1', from);
  return { c, greeting: await c.reply() };
}

describe('connection limits', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { limits: { max_clients_per_ip: 20, max_clients: 60 } } });
  });
  after(() => t.close());

  test('300 connections from one address: the 21st and later get 421 and are closed; another address is served', async () => {
    const from = '127.0.0.7';
    const clients = await Promise.all(Array.from({ length: 300 }, () => RawClient.connect(t.port, '127.0.0.1', from).catch(() => undefined)));
    const greetings = await Promise.all(clients.map((c) => (c ? c.reply(10_000).catch(() => '') : Promise.resolve(''))));
    const ok = greetings.filter((g) => g.startsWith('220')).length;
    const refused = greetings.filter((g) => /^421 .*too many connections from your address/i.test(g)).length;
    assert.equal(ok, 20);
    assert.equal(refused, 280);
    assert.equal(t.server.guard.connections(from), 20);
    // Refused sockets are closed by the server at once.
    const refusedClients = clients.filter((c, i) => c && greetings[i]!.startsWith('421'));
    assert.ok((await Promise.all(refusedClients.slice(0, 20).map((c) => c!.waitClosed(3000)))).every(Boolean));
    // Meanwhile another address logs in and works.
    const { c, greeting } = await open(t, '127.0.0.8');
    assert.match(greeting, /^220 /);
    await c.login();
    assert.match(await c.cmd('PWD'), /^257 /);
    c.close();
    const limitEvents = t.eventsNamed('security').filter((e) => e.event === 'connection-refused' && e.ip === from);
    assert.equal(limitEvents.length, 280);
    assert.match(limitEvents[0]!.detail ?? '', /max_clients_per_ip 20/);
    for (const client of clients) client?.close();
    // Slots are given back when connections close.
    const deadline = Date.now() + 5000;
    while (t.server.guard.connections(from) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.server.guard.connections(from), 0);
    const again = await open(t, from);
    assert.match(again.greeting, /^220 /);
    again.c.close();
  });

  test('max_clients caps all addresses together', async () => {
    const clients: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(t.port, '127.0.0.1', `127.0.1.${i + 1}`)));
      await Promise.all(batch.map((c) => c.reply()));
      clients.push(...batch);
    }
    const { c, greeting } = await open(t, '127.0.2.1');
    assert.match(greeting, /^421 .*too many users/i);
    c.close();
    for (const x of clients) x.close();
  });
});

describe('networks and per-user rules', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { guard: { deny: ['127.0.0.66', '127.0.9.0/24'], ban_threshold: 100 } } });
    const store = await FileUserStore.open(t.server.config.users_file);
    await store.add('carol', PASSWORD, { home: '.', permissions: 'elr' });
    await store.add('dave', PASSWORD, { home: '.', permissions: 'elr' });
    await store.save();
    // allow_from / deny_from / max_sessions are edited in the file (the CLI's job); write them directly here.
    const { readFile, writeFile } = await import('node:fs/promises');
    const file = t.server.config.users_file;
    const data = JSON.parse(await readFile(file, 'utf8')) as { users: Array<Record<string, unknown>> };
    for (const u of data.users) {
      if (u.name === 'carol') u.allow_from = ['127.0.0.0/30', '::1'];
      if (u.name === 'dave') {
        u.deny_from = ['127.0.0.21'];
        u.max_sessions = 1;
      }
    }
    await writeFile(file, JSON.stringify(data));
    await new Promise((r) => setTimeout(r, 1100)); // the store re-reads at most once a second
  });
  after(() => t.close());

  test('global deny: 421 before the greeting, single address and CIDR', async () => {
    for (const from of ['127.0.0.66', '127.0.9.200']) {
      const { c, greeting } = await open(t, from);
      assert.match(greeting, /^421 Access denied/);
      assert.ok(await c.waitClosed(3000));
    }
    const { c, greeting } = await open(t, '127.0.0.65');
    assert.match(greeting, /^220 /);
    c.close();
  });

  test('per-user allow_from: outside it the right password is a failed login', async () => {
    const { c } = await open(t, '127.0.0.20');
    assert.match(await c.cmd('USER carol'), /^331 /);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), /^530 /);
    const failed = t.eventsNamed('login-failed').at(-1)!;
    assert.equal(failed.ip, '127.0.0.20');
    assert.match(failed.reason, /address not allowed/);
    assert.ok(t.eventsNamed('security').some((e) => e.event === 'user-address-refused' && e.ip === '127.0.0.20'));
    c.close();
    const inside = await open(t, '127.0.0.2');
    await inside.c.login('carol');
    inside.c.close();
  });

  test('per-user deny_from and max_sessions', async () => {
    const denied = await open(t, '127.0.0.21');
    await denied.c.cmd('USER dave');
    assert.match(await denied.c.cmd(`PASS ${PASSWORD}`), /^530 /);
    denied.c.close();
    const first = await open(t, '127.0.0.22');
    await first.c.login('dave');
    const second = await open(t, '127.0.0.22');
    await second.c.cmd('USER dave');
    assert.match(await second.c.cmd(`PASS ${PASSWORD}`), /^421 Too many sessions for user dave/);
    assert.ok(await second.c.waitClosed(3000));
    first.c.close();
    await first.c.waitClosed();
    await new Promise((r) => setTimeout(r, 100));
    const third = await open(t, '127.0.0.22');
    await third.c.login('dave');
    third.c.close();
  });
});

describe('before login, almost nothing', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { guard: { ban_threshold: 5 }, limits: { commands_per_second: 20, command_burst: 20 } } });
  });
  after(() => t.close());

  test('only the pre-login commands are answered; every other one gets 530 and scores', async () => {
    const { c } = await open(t, '127.0.0.30');
    assert.match(await c.cmd('FEAT'), /^211/);
    assert.match(await c.cmd('SYST'), /^215 /);
    assert.match(await c.cmd('HELP'), /^214/);
    assert.match(await c.cmd('NOOP'), /^200 /);
    assert.match(await c.cmd('OPTS UTF8 ON'), /^200 /);
    assert.match(await c.cmd('CLNT test'), /^200 /);
    assert.match(await c.cmd('HOST localhost'), /^220 /);
    for (const cmd of ['ACCT x', 'REIN', 'OPTS MLST type;', 'SITE CPFR /etc/passwd']) {
      assert.match(await c.cmd(cmd), /^530 /, cmd);
    }
    // The fifth point (ban_threshold 5) bans the address: its session ends at once.
    assert.match(await c.cmd('SITE CPTO /x'), /^421 .*banned/);
    assert.ok(await c.waitClosed(3000));
    const ban = t.eventsNamed('security').find((e) => e.event === 'ban' && e.ip === '127.0.0.30');
    assert.ok(ban);
    assert.match(ban.detail ?? '', /before login/);
    const again = await open(t, '127.0.0.30');
    assert.match(again.greeting, /^421 /);
    again.c.close();
  });

  test('command rate: over the limit a session is slowed down, the overrun is logged once and scored', async () => {
    const { c } = await open(t, '127.0.0.31');
    await c.login();
    const t0 = Date.now();
    // 20 in the burst (2 went to the login), then 20/s: 32 more NOOPs take about 1.6 s.
    let lines = '';
    for (let i = 0; i < 50; i++) lines += 'NOOP\r\n';
    c.write(lines);
    for (let i = 0; i < 50; i++) assert.match(await c.reply(), /^200 /);
    const took = Date.now() - t0;
    assert.ok(took >= 1300 && took < 5000, `took ${took} ms`);
    const events = t.eventsNamed('security').filter((e) => e.event === 'command-rate-limit' && e.ip === '127.0.0.31');
    assert.equal(events.length, 1);
    // Another session is not slowed by this one.
    const other = await open(t, '127.0.0.32');
    const t1 = Date.now();
    for (let i = 0; i < 5; i++) assert.match(await other.c.cmd('NOOP'), /^200 /);
    assert.ok(Date.now() - t1 < 500);
    other.c.close();
    c.close();
  });
});
