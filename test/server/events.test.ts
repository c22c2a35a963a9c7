import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RawClient } from '../helpers/clients.js';
import { withServer } from '../helpers/server.js';

describe("an embedder's event listeners", () => {
  test('one that throws or rejects is reported as server-error; the listeners after it still run; the session and the process go on', async () => {
    await withServer({}, async (t) => {
      const seen: string[] = [];
      t.server.events.on('login', () => {
        throw new Error('sync listener failed');
      });
      t.server.events.on('login', async () => {
        await Promise.resolve();
        throw new Error('async listener failed');
      });
      t.server.events.on('login', (e) => seen.push(String(e.user)));
      const c = await RawClient.loggedIn(t.port);
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seen, ['alice'], 'the listener after the failing ones ran');
      const reported = t.eventsNamed('server-error').map((e) => (e.error as Error).message);
      assert.deepEqual(reported.sort(), ['async listener failed', 'sync listener failed']);
    });
  });
});
