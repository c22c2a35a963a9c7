import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { PassivePorts } from '../../src/data/passive.js';
import { refusesConnections } from '../helpers/clients.js';

/** A free port to use as a one-port passive range. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as { port: number };
  await new Promise((r) => probe.close(r));
  return port;
}

const options = { peerAddress: '127.0.0.1', allowForeign: false, timeoutMs: 5000, onForeign: () => undefined };

describe('PassivePorts', () => {
  it('a listener closed after its connection arrived does not free the port a newer listener holds', async () => {
    const port = await freePort();
    const ports = new PassivePorts(port, port, 10);
    const first = await ports.listen('127.0.0.1', options);
    const client = connect({ port, host: '127.0.0.1' });
    client.on('error', () => undefined);
    await first.accept(); // connected: the port is given back at once
    assert.equal(ports.open, 0);
    const second = await ports.listen('127.0.0.1', options);
    assert.equal(second.port, port);
    assert.equal(ports.open, 1);
    first.close(); // the unused connection is dropped; the port is not released twice
    assert.equal(ports.open, 1, 'the newer listener keeps its reservation');
    second.close();
    assert.equal(ports.open, 0);
    client.destroy();
  });

  it('a connection already gone when accepted is neither reported as foreign nor taken: the listener waits on', async () => {
    const port = await freePort();
    const ports = new PassivePorts(port, port, 10);
    const foreign: string[] = [];
    const listener = await ports.listen('127.0.0.1', { ...options, onForeign: (ip) => foreign.push(ip) });
    // A socket whose peer address can no longer be read, as accept() returns one reset in the queue.
    const other = createServer();
    const sockets: Socket[] = [];
    try {
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
      const accepted = new Promise<Socket>((r) => other.once('connection', r));
      sockets.push(connect({ port: (other.address() as { port: number }).port, host: '127.0.0.1' }));
      const dead = await accepted;
      dead.destroy();
      await new Promise((r) => dead.once('close', r));
      assert.equal(dead.remoteAddress, undefined);
      listener.onConnection(dead);
      assert.deepEqual(foreign, [], 'nothing to report: no address');
      const client = await connected(port);
      sockets.push(client);
      const taken = await listener.take();
      sockets.push(taken);
      assert.equal(taken.remotePort, client.localPort, 'the next connection is the one taken');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => other.close(r));
      ports.close();
    }
  });

  it('a port whose connection arrived lingers and is taken by the next listener; a stray connection meanwhile is closed', async () => {
    const port = await freePort();
    const ports = new PassivePorts(port, port, 10, { lingerMs: 60_000, minIdle: 1 });
    const first = await ports.listen('127.0.0.1', options);
    const a = await connected(port);
    const socketA = await first.take();
    assert.equal(ports.open, 0);
    assert.equal(ports.idleCount, 1, 'still listening, for the next PASV');
    // Nobody holds the port: a connection now is closed at once, not kept for a later listener.
    const stray = await connected(port);
    await new Promise((r) => stray.once('close', r));
    const second = await ports.listen('127.0.0.1', options);
    assert.equal(second.port, port);
    assert.equal(ports.idleCount, 0);
    const b = await connected(port);
    const socketB = await second.take();
    assert.equal(socketB.remotePort, b.localPort, 'the second listener got the connection made after it, not the stray one');
    for (const s of [a, b, socketA, socketB]) s.destroy();
    ports.close();
    assert.ok(await refusesConnections(port), 'closed with the server');
  });

  it('a lingering port stops listening after the linger time; a listener given up unconnected closes its port at once', async () => {
    const port = await freePort();
    const ports = new PassivePorts(port, port, 10, { lingerMs: 50, minIdle: 1 });
    const first = await ports.listen('127.0.0.1', options);
    const a = await connected(port);
    (await first.take()).destroy();
    a.destroy();
    assert.equal(ports.idleCount, 1);
    for (let i = 0; i < 100 && ports.idleCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(ports.idleCount, 0);
    assert.ok(await refusesConnections(port), 'a lingering port was left open');
    const unused = await ports.listen('127.0.0.1', options);
    unused.close();
    assert.equal(ports.idleCount, 0, 'an unconnected listener does not linger');
    assert.ok(await refusesConnections(port), 'the port of an abandoned listener still accepts');
    ports.close();
  });

  it('with fewer lingering ports than minIdle, a random pick that lands on one takes it: a small range never runs out', async () => {
    const port = await freePort();
    const ports = new PassivePorts(port, port, 10, { lingerMs: 60_000, minIdle: 16 });
    for (let i = 0; i < 3; i++) {
      const listener = await ports.listen('127.0.0.1', options);
      assert.equal(listener.port, port);
      const c = await connected(port);
      (await listener.take()).destroy();
      c.destroy();
      assert.equal(ports.idleCount, 1);
    }
    ports.close();
    assert.equal(ports.idleCount, 0);
  });
});

function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}
