import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePortRange } from '../../src/config/schema.js';
import { passivePort, RawClient } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** Listening TCP sockets (IPv4 and IPv6) whose port is in [min, max], from /proc/net. */
async function listeningIn(min: number, max: number): Promise<number> {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A') continue; // TCP_LISTEN
      const port = parseInt(cols[1]!.split(':').pop()!, 16);
      if (port >= min && port <= max) n++;
    }
  }
  return n;
}

async function greeted(t: TestServer, from?: string): Promise<RawClient> {
  const c = await RawClient.connect(t.port, '127.0.0.1', from);
  assert.match(await c.reply(), /^220 /);
  return c;
}

async function retr(c: RawClient, name: string, from?: string): Promise<string> {
  const port = passivePort(await c.cmd('EPSV'));
  const data = connect({ port, host: '127.0.0.1', localAddress: from });
  const chunks: Buffer[] = [];
  data.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise((r) => data.once('close', r));
  assert.match(await c.cmd(`RETR ${name}`), /^150 /);
  assert.match(await c.reply(), /^226 /);
  await closed;
  return Buffer.concat(chunks).toString();
}

describe('passive listeners', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { limits: { commands_per_second: 100_000, command_burst: 100_000 } } });
    await writeFile(join(t.root, 'hello.txt'), 'hello');
  });
  after(() => t.close());

  test('5,000 PASV on one connection hold at most one listener; others still transfer', async () => {
    const { min, max } = parsePortRange(t.server.config.passive.ports)!;
    const c = await greeted(t);
    await c.login();
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, await listeningIn(min, max));
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const other = await greeted(t, '127.0.0.40');
    await other.login('alice');
    let transfers = 0;
    for (let i = 0; i < 5000; i++) {
      assert.match(await c.cmd(i % 2 ? 'PASV' : 'EPSV'), /^22[79] /);
      if (i % 1000 === 500) {
        most = Math.max(most, await listeningIn(min, max));
        // Mid-flood another client transfers (its own listener comes and goes).
        assert.equal(await retr(other, 'hello.txt', '127.0.0.40'), 'hello');
        transfers++;
      }
    }
    sampling = false;
    await sampler;
    most = Math.max(most, await listeningIn(min, max));
    assert.equal(transfers, 5);
    assert.ok(most >= 1, 'the sampler saw listeners');
    // The flooding session holds at most one; the sampler may catch the other client's at the same time.
    assert.ok(most <= 2, `at most ${most} listeners seen`);
    assert.equal(await listeningIn(min, max), 1, 'exactly the flooder’s last one remains');
    assert.equal(t.server.context.passive.open, 1);
    c.close();
    other.close();
    await c.waitClosed();
    const deadline = Date.now() + 3000;
    while (t.server.context.passive.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await listeningIn(min, max), 0, 'closed with its session');
  });
});

describe('passive range exhausted', () => {
  let t: TestServer;
  before(async () => {
    // Below the kernel's ephemeral range (32768+): a client connection of a concurrent test could
    // otherwise hold one of the two ports as its local port, and the test would see 425 one PASV early.
    const base = 30000 + Math.floor(Math.random() * 1300) * 2;
    t = await startServer({ config: { passive: { ports: `${base}-${base + 1}` } } });
    await writeFile(join(t.root, 'hello.txt'), 'hello');
  });
  after(() => t.close());

  test('when every port is taken PASV gets 425 and the server keeps serving', async () => {
    const a = await greeted(t);
    const b = await greeted(t);
    const c = await greeted(t);
    for (const x of [a, b, c]) await x.login();
    assert.match(await a.cmd('PASV'), /^227 /);
    assert.match(await b.cmd('EPSV'), /^229 /);
    assert.match(await c.cmd('EPSV'), /^425 /);
    assert.match(await c.cmd('PWD'), /^257 /, 'the refused client is still served');
    assert.ok(t.eventsNamed('security').some((e) => e.event === 'passive-unavailable'));
    // a transfers through its listener, which frees a port for c.
    const port = passivePort(await a.cmd('EPSV'));
    const data = connect({ port, host: '127.0.0.1' });
    const got: Buffer[] = [];
    data.on('data', (d: Buffer) => got.push(d));
    const closed = new Promise((r) => data.once('close', r));
    assert.match(await a.cmd('RETR hello.txt'), /^150 /);
    assert.match(await a.reply(), /^226 /);
    await closed;
    assert.equal(Buffer.concat(got).toString(), 'hello');
    assert.equal(await retr(c, 'hello.txt'), 'hello');
    for (const x of [a, b, c]) x.close();
  });
});

describe('slow and over-long input', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { timeouts: { login: 2, idle: 2 } } });
  });
  after(() => t.close());

  test('slowloris (a byte every 250 ms, never a line) is closed at the login bound; others are served', async () => {
    const slow = await greeted(t, '127.0.0.50');
    const t0 = Date.now();
    const text = 'USER aliceeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
    let i = 0;
    const drip = setInterval(() => {
      if (!slow.closed) slow.write(text[i++ % text.length]!);
    }, 250);
    const other = await greeted(t);
    await other.login();
    assert.match(await other.cmd('PWD'), /^257 /);
    other.close();
    assert.match(await slow.reply(5000), /^421 Login timeout/);
    assert.ok(await slow.waitClosed(3000));
    clearInterval(drip);
    const took = Date.now() - t0;
    assert.ok(took >= 1800 && took < 4000, `closed after ${took} ms`);
    const timeouts = t.eventsNamed('security').filter((e) => e.event === 'login-timeout' && e.ip === '127.0.0.50');
    assert.equal(timeouts.length, 1, 'one log line');
    assert.ok(timeouts[0]!.sessionId);
  });

  test('a logged-in slowloris is closed at the idle bound', async () => {
    const slow = await greeted(t, '127.0.0.51');
    await slow.login();
    const t0 = Date.now();
    const drip = setInterval(() => {
      if (!slow.closed) slow.write('N');
    }, 250);
    assert.match(await slow.reply(5000), /^421 Idle timeout/);
    assert.ok(await slow.waitClosed(3000));
    clearInterval(drip);
    assert.ok(Date.now() - t0 < 4000);
    assert.equal(t.eventsNamed('security').filter((e) => e.event === 'idle-timeout' && e.ip === '127.0.0.51').length, 1);
  });

  test('a 1 MiB line without a newline is refused, never buffered, and closed at the login bound', async () => {
    const big = await greeted(t, '127.0.0.52');
    const t0 = Date.now();
    big.write(Buffer.alloc(1024 * 1024, 'A'));
    assert.match(await big.reply(), /^500 .*too long/i);
    const other = await greeted(t);
    await other.login();
    assert.match(await other.cmd('NOOP'), /^200 /);
    other.close();
    assert.match(await big.reply(5000), /^421 /);
    assert.ok(await big.waitClosed(3000));
    assert.ok(Date.now() - t0 < 4000);
    assert.ok(t.eventsNamed('security').some((e) => e.event === 'line-too-long' && e.ip === '127.0.0.52'));
  });
});

describe('timeouts.idle = 0', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { timeouts: { login: 2, idle: 0 } } });
  });
  after(() => t.close());

  test('a logged-in session is never idled out (the login bound still holds)', async () => {
    const quiet = await greeted(t);
    await quiet.login();
    const silent = await greeted(t, '127.0.0.53');
    // Several sweeps of the one-second deadline check.
    await new Promise((r) => setTimeout(r, 2600));
    assert.match(await quiet.cmd('NOOP'), /^200 /);
    assert.ok(await silent.waitClosed(3000), 'the never-logged-in one is closed at the login bound');
    assert.ok(!t.eventsNamed('security').some((e) => e.event === 'idle-timeout'));
    quiet.close();
  });
});
