import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { PassivePorts } from '../../src/data/passive.js';

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
});
