import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { controlSocketOf, openControlSocket } from '../../src/server/control-socket.js';

/** One request line to a control socket; resolves to its parsed answer. */
function ask(path: string, line: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path);
    let got = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (got += d));
    c.on('end', () => resolve(JSON.parse(got)));
    c.on('error', reject);
    c.write(line);
  });
}

describe('the control socket (moat who)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moat-control-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const noErrors = (error: Error): void => assert.fail(`unexpected control socket error: ${error.message}`);

  test('answers its requests; an answer that throws is an error reply, not silence', async () => {
    const path = controlSocketOf(join(dir, 'a'));
    const server = await openControlSocket(path, { who: () => ({ sessions: [] }), bad: () => { throw new Error('boom'); } }, noErrors);
    try {
      assert.deepEqual(await ask(path, 'who\n'), { sessions: [] });
      assert.deepEqual(await ask(path, 'bad\n'), { error: 'could not answer: boom' });
      assert.deepEqual(await ask(path, 'toString\n'), { error: 'unknown request' });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a stale socket file is replaced; a live one, a file that is no socket and an over-long path are refused', async () => {
    const stateDir = join(dir, 'b');
    const path = controlSocketOf(stateDir);
    const live = await openControlSocket(path, {}, noErrors);
    await assert.rejects(openControlSocket(path, {}, noErrors), /another moat serve is running/);
    await new Promise((r) => live.close(r));
    // What a crash leaves: a socket file nobody listens on (Python binds and exits without removing it).
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path]);
    assert.ok((await stat(path)).isSocket());
    const server = await openControlSocket(path, { who: () => 'fresh' }, noErrors);
    try {
      assert.equal(await ask(path, 'who\n'), 'fresh');
    } finally {
      await new Promise((r) => server.close(r));
    }

    const plain = controlSocketOf(join(dir, 'c'));
    await openControlSocket(plain, {}, noErrors).then((s) => new Promise((r) => s.close(r)));
    await writeFile(plain, 'not a socket');
    await assert.rejects(openControlSocket(plain, {}, noErrors), /is not a socket/);
    await assert.rejects(openControlSocket(controlSocketOf(join(dir, 'x'.repeat(120))), {}, noErrors), /too long for a Unix socket/);
  });
});
