import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RawClient, run } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';

const MOAT = fileURLToPath(new URL('../../bin/moat.js', import.meta.url));
const ATTACKER = '127.0.0.2';

function moat(...args: string[]) {
  return run(process.execPath, [MOAT, ...args], { timeoutMs: 30_000 });
}

async function greeting(t: TestServer, from: string): Promise<{ c: RawClient; greeting: string }> {
  const c = await RawClient.connect(t.port, '127.0.0.1', from);
  return { c, greeting: await c.reply() };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('brute force: delays, disconnects, bans that survive restarts', () => {
  let stateDir: string;
  const config = (dir: string) => ({
    state_dir: dir,
    limits: { max_login_attempts: 3 },
    guard: { failed_login_delay_ms: 40, ban_threshold: 10, ban_window: 60, ban_duration: 120 },
  });
  let t: TestServer;
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'moat-guard-state-'));
    t = await startServer({ config: config(stateDir) });
  });
  after(async () => {
    await t.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  test('20 wrong passwords from 127.0.0.2: slower and slower, disconnected, then banned', async () => {
    let attempts = 0;
    let disconnects = 0;
    let bannedAtGreeting = '';
    const perConnection: number[][] = [];
    while (attempts < 20) {
      const { c, greeting: g } = await greeting(t, ATTACKER);
      if (g.startsWith('421')) {
        bannedAtGreeting = g;
        c.close();
        break;
      }
      assert.match(g, /^220 /);
      const delays: number[] = [];
      perConnection.push(delays);
      while (attempts < 20) {
        const u = await c.cmd('USER alice');
        if (!u.startsWith('331')) break;
        const t0 = Date.now();
        const r = await c.cmd('PASS wrong-password');
        attempts++;
        if (!r.startsWith('530')) break;
        delays.push(Date.now() - t0);
        if (delays.length === 3) {
          assert.match(await c.reply(), /^421 .*failed logins/i);
          break;
        }
      }
      if (await c.waitClosed(3000)) disconnects++;
      c.close();
    }
    assert.match(bannedAtGreeting, /^421 .*banned/i, 'a new connection is refused before the greeting');
    assert.ok(attempts <= 20, `banned after ${attempts} attempts`);
    assert.ok(disconnects >= 3, 'disconnected after max_login_attempts');
    // Each failure on a connection waits longer than the one before (40, 80, 160 ms).
    const full = perConnection.find((d) => d.length === 3)!;
    assert.ok(full[0]! >= 35 && full[1]! >= 75 && full[2]! >= 150, `delays ${full.join(', ')}`);
    const ban = t.eventsNamed('security').find((e) => e.event === 'ban');
    assert.ok(ban, 'ban is a security event');
    assert.equal(ban.ip, ATTACKER);
    assert.match(ban.detail ?? '', /for 120 s/);
    assert.ok(t.server.guard.isBanned(ATTACKER));
  });

  test('a correct login from 127.0.0.3 works during the ban', async () => {
    const { c, greeting: g } = await greeting(t, '127.0.0.3');
    assert.match(g, /^220 /);
    await c.login();
    assert.match(await c.cmd('PWD'), /^257 /);
    c.close();
  });

  test('the ban survives a restart; moat ban list shows it and moat ban del lifts it', async () => {
    await t.close();
    t = await startServer({ config: config(stateDir) });
    const { c, greeting: g } = await greeting(t, ATTACKER);
    assert.match(g, /^421 .*banned/i);
    assert.ok(await c.waitClosed(3000), 'closed at once');

    const list = await moat('ban', 'list', '--state-dir', stateDir);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /127\.0\.0\.2\s+until .*offence 1/);

    const del = await moat('ban', 'del', ATTACKER, '--state-dir', stateDir);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /unbanned 127\.0\.0\.2/);
    const lifted = await waitFor(async () => {
      const { c: probe, greeting: pg } = await greeting(t, ATTACKER);
      probe.close();
      return pg.startsWith('220');
    });
    assert.ok(lifted, 'the running server picked up the change');
    assert.ok(t.eventsNamed('security').some((e) => e.event === 'unban' && e.ip === ATTACKER));
    assert.equal((await moat('ban', 'del', ATTACKER, '--state-dir', stateDir)).code, 1, 'not banned any more');
  });

  test('moat ban add bans a live address (its open sessions end) and a repeat ban doubles', async () => {
    const { c: live } = await greeting(t, '127.0.0.4');
    await live.login();
    const add = await moat('ban', 'add', '127.0.0.4', '--duration', '30', '--state-dir', stateDir);
    assert.equal(add.code, 0, add.stderr);
    assert.doesNotMatch(add.stderr, /never_ban/);
    assert.ok(await live.waitClosed(5000), 'live session of the banned address is closed');
    const { c, greeting: g } = await greeting(t, '127.0.0.4');
    assert.match(g, /^421 /);
    c.close();
    assert.equal((await moat('ban', 'add', 'not-an-ip', '--state-dir', stateDir)).code, 1);
    // The host itself (never_ban by default): the operator's ban applies, and is said to.
    const host = await moat('ban', 'add', '::1', '--duration', '5', '--state-dir', stateDir);
    assert.equal(host.code, 0, host.stderr);
    assert.match(host.stderr, /^moat: warning: ::1 is in guard\.never_ban/m);
    assert.equal((await moat('ban', 'del', '::1', '--state-dir', stateDir)).code, 0);
    for (const [duration, why] of [['99999999999', /at most 31622400 seconds/], ['1.5', /whole number of seconds/], ['0', /whole number of seconds >= 1/]] as const) {
      const bad = await moat('ban', 'add', '10.9.9.9', '--duration', duration, '--state-dir', stateDir);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, why);
    }
    // Repeat offender through the guard itself: the second ban lasts twice as long.
    t.server.guard.unban('127.0.0.4');
    const first = t.server.guard.ban('127.0.0.5', 'test')!;
    t.server.guard.unban('127.0.0.5');
    assert.equal(first.offences, 1);
    const g2 = t.server.guard.ban('127.0.0.6', 'one')!;
    const g3 = t.server.guard.ban('127.0.0.6', 'two')!;
    assert.equal(g3.offences, 2);
    const span = (r: typeof g2) => Date.parse(r.until) - Date.parse(r.since);
    assert.equal(span(g3), 2 * span(g2));
    assert.equal(t.server.guard.ban('127.0.0.1', 'never_ban covers the host itself'), undefined);
  });
});

describe('a bans file edited by hand', () => {
  test('entries that are not bans are left out and said so (moat ban and the server); a reason stays one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'moat-bans-edit-'));
    let t: TestServer | undefined;
    try {
      const until = new Date(Date.now() + 3_600_000).toISOString();
      const since = new Date().toISOString();
      await writeFile(
        join(dir, 'bans.json'),
        JSON.stringify({
          version: 1,
          bans: [
            { ip: '10.7.0.1', since, until, offences: 1, reason: 'evil\nfake-ip\tuntil forever' },
            { ip: '10.7.0.2', since: 'x', until, offences: 'a' },
            { ip: 'not-an-ip', since, until },
          ],
        }),
      );
      const list = await moat('ban', 'list', '--state-dir', dir);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stderr, /^moat: warning: .*bans\.json: 2 entries are not valid bans and were left out/m);
      assert.equal(list.stdout.trim().split('\n').length, 1, 'one ban, one line: the reason cannot add a line');
      assert.match(list.stdout, /^10\.7\.0\.1\t.*evil fake-ip until forever$/m);
      t = await startServer({ config: { state_dir: dir } });
      assert.ok(t.eventsNamed('server-error').some((e) => /2 entries are not valid bans/.test(String((e.error as Error | undefined)?.message))));
    } finally {
      await t?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
