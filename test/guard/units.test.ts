import assert from 'node:assert/strict';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { BanStore } from '../../src/guard/bans.js';
import { canonicalIp, isLoopback, NetworkList } from '../../src/guard/networks.js';
import { rootDecision, resolveRunAs } from '../../src/guard/privileges.js';
import { ScoreBoard, TokenBucket } from '../../src/guard/rate.js';
import { inTempDir } from '../helpers/files.js';

describe('guard building blocks', () => {
  test('NetworkList: IPv4 and IPv6 CIDRs, single addresses, IPv4-mapped addresses', () => {
    const n = new NetworkList(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::ffff:172.16.0.0/108']);
    assert.ok(n.has('10.1.2.3'));
    assert.ok(n.has('::ffff:10.1.2.3'));
    assert.ok(n.has('::FFFF:10.1.2.3'));
    assert.ok(n.has('192.168.1.7'));
    assert.ok(!n.has('192.168.1.8'));
    assert.ok(n.has('2001:db8:1::5'));
    assert.ok(!n.has('2001:db9::1'));
    assert.ok(n.has('172.16.5.5'), 'mapped /108 is IPv4 /12');
    assert.ok(!n.has('172.32.0.1'));
    assert.ok(!n.has('not an ip'));
    assert.ok(!new NetworkList([]).has('10.0.0.1'));
    assert.ok(isLoopback('127.0.0.2') && isLoopback('::1') && isLoopback('::ffff:127.0.0.1') && !isLoopback('0.0.0.0'));
    assert.equal(canonicalIp('::FFFF:1.2.3.4'), '1.2.3.4');
    assert.equal(canonicalIp('2001:DB8:0:0::1'), '2001:db8::1');
    assert.equal(canonicalIp('nope'), undefined);
  });

  test('TokenBucket: a burst, then the refill rate; past it, the wait for the next token', () => {
    let now = 0;
    const b = new TokenBucket(10, 5, () => now);
    for (let i = 0; i < 5; i++) assert.equal(b.reserve(), 0);
    assert.equal(b.reserve(), 100, 'one token per 100 ms, taken on credit');
    now += 200; // pays the credit back, one token left
    assert.equal(b.reserve(), 0);
    assert.equal(b.reserve(), 100);
    now += 10_000; // refills to the burst, no more
    for (let i = 0; i < 5; i++) assert.equal(b.reserve(), 0);
    assert.equal(b.reserve(), 100);
  });

  test('ScoreBoard: points expire with the window', () => {
    let now = 0;
    const s = new ScoreBoard(1000, () => now);
    assert.equal(s.add('a', 2), 2);
    now = 500;
    assert.equal(s.add('a', 1), 3);
    now = 1200;
    assert.equal(s.add('a', 1), 2);
    now = 5000;
    s.prune();
    assert.equal(s.add('a', 1), 1);
  });

  test('BanStore: atomic save, reload on change, offences remembered', async () => {
    await inTempDir(async (dir) => {
    const file = join(dir, 'state', 'bans.json');
    const a = await BanStore.open(file);
    const r = a.ban('::ffff:10.0.0.9', 60, 'test', 1_000_000);
    assert.equal(r.ip, '10.0.0.9');
    assert.equal(r.offences, 1);
    await a.save();
    assert.deepEqual((await readdir(join(dir, 'state'))).sort(), ['bans.json'], 'no temp file left');
    const b = await BanStore.open(file);
    assert.ok(b.active('10.0.0.9', 1_000_001));
    assert.ok(!b.active('10.0.0.9', 1_000_000 + 61_000));
    assert.equal(b.ban('10.0.0.9', 60, 'again').offences, 2);
    await b.save();
    assert.ok(await a.reloadIfChanged(), 'a sees b’s write');
    assert.equal(a.get('10.0.0.9')?.offences, 2);
    assert.equal(await a.reloadIfChanged(), null);
    a.remove('10.0.0.9');
    await a.save();
    assert.equal(JSON.parse(await readFile(file, 'utf8')).bans.length, 0);
    await writeFile(file, '{broken');
    await assert.rejects(BanStore.open(file));
    await assert.rejects(a.reloadIfChanged(), 'a broken file is reported');
    assert.equal(await a.reloadIfChanged(), null, 'once, not on every check');
    });
  });

  test('BanStore: two writers (the server and moat ban) never overwrite each other’s edits', async () => {
    await inTempDir(async (dir) => {
    const file = join(dir, 'bans.json');
    const server = await BanStore.open(file);
    server.ban('10.0.0.1', 60, 'seed');
    await server.save();
    const cli = await BanStore.open(file);
    // The server bans and drops an address in memory; meanwhile the CLI writes its own edit.
    server.ban('10.0.0.2', 60, 'auto');
    server.remove('10.0.0.1');
    cli.ban('10.0.0.3', 60, 'by hand');
    await cli.save();
    // The server's one-second check keeps its unwritten edits on top of the CLI's file.
    assert.ok(await server.reloadIfChanged());
    assert.deepEqual(server.list(0, true).map((r) => r.ip), ['10.0.0.2', '10.0.0.3']);
    await server.save();
    const cliAgain = await BanStore.open(file);
    assert.deepEqual(cliAgain.list(0, true).map((r) => r.ip), ['10.0.0.2', '10.0.0.3']);
    // And the other way round: a CLI holding an old read replays only its own edit.
    cliAgain.remove('10.0.0.3');
    server.ban('10.0.0.4', 60, 'auto');
    await server.save();
    await cliAgain.save();
    const final = JSON.parse(await readFile(file, 'utf8')) as { bans: Array<{ ip: string }> };
    assert.deepEqual(final.bans.map((r) => r.ip), ['10.0.0.2', '10.0.0.4']);
    });
  });

  test('BanStore: writers saving at the same moment lose none of each other’s bans; the file is 0600', async () => {
    await inTempDir(async (dir) => {
      const file = join(dir, 'bans.json');
      await (await BanStore.open(file)).save();
      for (let round = 0; round < 5; round++) {
        // Each opened before any of the others wrote: every save finds the file changed under it.
        const writers = await Promise.all(Array.from({ length: 6 }, () => BanStore.open(file)));
        writers.forEach((w, i) => w.ban(`10.1.${round}.${i}`, 600, 'parallel'));
        await Promise.all(writers.map((w) => w.save()));
      }
      const final = await BanStore.open(file);
      assert.equal(final.list(0, true).length, 30, 'every ban of every writer is in the file');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.deepEqual((await readdir(dir)).sort(), ['bans.json'], 'no lock or temp file left');
    });
  });

  test('BanStore: a pruned record does not erase the other writer’s newer ban; an unreadable file is reported, then replaced', async () => {
    await inTempDir(async (dir) => {
    const file = join(dir, 'bans.json');
    const server = await BanStore.open(file);
    server.ban('10.0.0.7', 1, 'old', 1_000_000);
    await server.save();
    const cli = await BanStore.open(file);
    assert.ok(server.prune(0, 1_000_000 + 5_000), 'the old ban expired and is pruned in memory');
    cli.ban('10.0.0.7', 3600, 'again by hand');
    await cli.save();
    await server.save();
    assert.equal(JSON.parse(await readFile(file, 'utf8')).bans[0]?.reason, 'again by hand');

    await writeFile(file, '{broken');
    server.ban('10.0.0.8', 60, 'auto');
    const reported: unknown[] = [];
    await server.save((error) => reported.push(error));
    assert.equal(reported.length, 1, 'the unreadable file is reported once');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')).bans.map((r: { ip: string }) => r.ip), ['10.0.0.7', '10.0.0.8']);
    assert.deepEqual((await readdir(dir)).sort(), ['bans.json'], 'no temporary file left');
    });
  });

  test('BanStore: lifting an address that is not banned leaves no edit that would erase a later ban by the other writer', async () => {
    await inTempDir(async (dir) => {
      const file = join(dir, 'bans.json');
      const server = await BanStore.open(file);
      assert.equal(server.remove('10.0.0.9'), false);
      const cli = await BanStore.open(file);
      cli.ban('10.0.0.9', 60, 'by hand');
      await cli.save();
      assert.ok(await server.reloadIfChanged());
      assert.equal(server.active('10.0.0.9')?.reason, 'by hand');
    });
  });

  test('BanStore: while writes fail, unwritten edits stay one per address; the next good write has the last state', async () => {
    await inTempDir(async (dir) => {
    const folder = join(dir, 'state');
    const store = await BanStore.open(join(folder, 'bans.json'));
    await writeFile(folder, 'a file where the folder should be');
    for (let i = 0; i < 500; i++) {
      store.ban('10.0.0.9', 60, `round ${i}`);
      store.remove('10.0.0.9');
      store.ban('10.0.0.10', 60, `round ${i}`);
      await assert.rejects(store.save());
    }
    assert.equal((store as unknown as { edits: Map<string, unknown> }).edits.size, 2);
    await rm(folder);
    await store.save();
    const written = JSON.parse(await readFile(join(folder, 'bans.json'), 'utf8')) as { bans: Array<{ ip: string; reason: string }> };
    assert.deepEqual(written.bans.map((r) => [r.ip, r.reason]), [['10.0.0.10', 'round 499']]);
    });
  });

  test('root rule: drop with run_as, stay on loopback or allow_root, refuse otherwise', () => {
    const cfg = (extra: Record<string, unknown>) => validateConfig({ root: '/tmp/x', ...extra });
    assert.deepEqual(rootDecision(cfg({}), 1000), { action: 'none' });
    assert.equal(rootDecision(cfg({ run_as: 'nobody' }), 0).action, 'drop');
    assert.equal(rootDecision(cfg({ listen: ['127.0.0.1:2121', '[::1]:2121'] }), 0).action, 'stay');
    const refused = rootDecision(cfg({ listen: ['0.0.0.0:2121'] }), 0);
    assert.equal(refused.action, 'refuse');
    assert.match((refused as { message: string }).message, /run_as|allow-root/);
    assert.equal(rootDecision(cfg({ listen: ['0.0.0.0:2121'], allow_root: true }), 0).action, 'stay');
    assert.equal(rootDecision(cfg({ listen: ['127.0.0.1:2121'], tls: { implicit_listen: ['0.0.0.0:990'], generate_self_signed: true } }), 0).action, 'refuse');
    const nobody = resolveRunAs('nobody');
    assert.equal(nobody.user, 'nobody');
    assert.ok(nobody.uid > 0);
    assert.throws(() => resolveRunAs('no-such-user-here'), /no such user/);
    assert.throws(() => resolveRunAs('root'), /unprivileged/);
    assert.equal(resolveRunAs('65534:65534').gid, 65534);
  });
});
