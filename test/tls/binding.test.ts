import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { protectedClient, startTlsServer, tlsData, type TlsTestServer } from './helpers.js';

/**
 * Data-channel session binding: a PROT P data connection must resume a TLS
 * session Moat issued to a control connection of the same user from the same
 * address (same-user, the default), or of this very connection (same-connection).
 */
for (const rule of ['same-user', 'same-connection'] as const) {
  describe(`tls.data_session = ${rule}`, { concurrency: 1 }, () => {
    let t: TlsTestServer;
    before(async () => {
      t = await startTlsServer({ implicit: false, config: { tls: { data_session: rule } } });
    });
    after(() => t.close());

    const refusals = () => t.eventsNamed('security').filter((e) => e.event === 'data-tls-session-refused');

    test('resuming the control connection\'s own session is accepted', async () => {
      const c = await protectedClient(t.port);
      try {
        for (let i = 0; i < 3; i++) {
          // Like basic-ftp: the control connection's latest ticket, fresh for every data connection.
          const r = await tlsData(c, 'NLST', await c.session());
          assert.match(r.final, /^226/, JSON.stringify(r));
          assert.equal(r.reused, true);
        }
      } finally {
        c.close();
      }
    });

    test('a fresh TLS session on the data connection is refused with 522', async () => {
      const before = refusals().length;
      const c = await protectedClient(t.port);
      try {
        const r = await tlsData(c, 'LIST');
        assert.match(r.final, /^522 /);
        assert.equal(r.data, '');
        assert.equal(refusals().length, before + 1);
        assert.match(refusals().at(-1)!.detail!, /fresh TLS session/);
        // The session goes on: the next transfer with the right session works.
        const ok = await tlsData(c, 'NLST', await c.session());
        assert.match(ok.final, /^226/);
      } finally {
        c.close();
      }
    });

    test('resuming another user\'s session is refused', async () => {
      const before = refusals().length;
      const alice = await protectedClient(t.port, 'alice');
      const bob = await protectedClient(t.port, 'bob');
      try {
        const r = await tlsData(alice, 'LIST', await bob.session());
        assert.match(r.final, /^522 /);
        assert.equal(r.data, '');
        assert.equal(refusals().length, before + 1);
        assert.equal(refusals().at(-1)!.user, 'alice');
      } finally {
        alice.close();
        bob.close();
      }
    });

    test(`resuming the same user's other control connection is ${rule === 'same-user' ? 'accepted' : 'refused'}`, async () => {
      const before = refusals().length;
      const one = await protectedClient(t.port, 'alice');
      const two = await protectedClient(t.port, 'alice');
      try {
        const r = await tlsData(one, 'NLST', await two.session());
        if (rule === 'same-user') {
          assert.match(r.final, /^226/, JSON.stringify(r));
          assert.equal(r.reused, true);
          assert.equal(refusals().length, before);
        } else {
          assert.match(r.final, /^522 /);
          assert.equal(refusals().length, before + 1);
        }
      } finally {
        one.close();
        two.close();
      }
    });

    test('a session from a control connection that never logged in is refused', async () => {
      const { TlsLineClient } = await import('./helpers.js');
      const anon = await TlsLineClient.explicit(t.port);
      const alice = await protectedClient(t.port, 'alice');
      try {
        const r = await tlsData(alice, 'LIST', await anon.session());
        assert.match(r.final, /^522 /);
      } finally {
        anon.close();
        alice.close();
      }
    });
  });
}

describe('tls.data_session = off (per user)', () => {
  test('a user with tls_data_session = off may use fresh sessions; the rule stays for others', async () => {
    const t = await startTlsServer({ implicit: false });
    try {
      const { setUserTls } = await import('./helpers.js');
      setUserTls(t, 'bob', { tls_data_session: 'off' });
      const bob = await protectedClient(t.port, 'bob');
      const alice = await protectedClient(t.port, 'alice');
      try {
        assert.match((await tlsData(bob, 'LIST')).final, /^226/);
        assert.match((await tlsData(alice, 'LIST')).final, /^522/);
      } finally {
        bob.close();
        alice.close();
      }
    } finally {
      await t.close();
    }
  });
});
