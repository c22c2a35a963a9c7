import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { passivePort, RawClient, refusesConnections } from '../helpers/clients.js';
import { PASSWORD, startServer } from '../helpers/server.js';
import { setUserTls, startTlsServer, TlsLineClient, type TlsTestServer } from './helpers.js';

const TLS_REQUIRED = /^530 TLS required/;

describe('TLS policy and RFC 4217 commands', { concurrency: 1 }, () => {
  let t: TlsTestServer;
  let authCalls: string[];
  before(async () => {
    t = await startTlsServer({ implicit: false, config: { anonymous: { enabled: true } } });
    await t.users.add('carol', PASSWORD, { home: '.', permissions: 'elr' });
    await t.users.save();
    setUserTls(t, 'carol', { tls_control: 'optional' });
    authCalls = [];
    const authenticate = t.users.authenticate.bind(t.users);
    t.users.authenticate = (name, password, ctx) => {
      authCalls.push(name);
      return authenticate(name, password, ctx);
    };
  });
  after(() => t.close());

  test('FEAT lists AUTH TLS, PBSZ and PROT when TLS is configured, not otherwise', async () => {
    const c = await RawClient.connect(t.port);
    await c.reply();
    const feat = await c.cmd('FEAT');
    assert.match(feat, /^ AUTH TLS$/m);
    assert.match(feat, /^ PBSZ$/m);
    assert.match(feat, /^ PROT$/m);
    c.close();
    const plain = await startServer();
    try {
      const p = await RawClient.connect(plain.port);
      await p.reply();
      assert.doesNotMatch(await p.cmd('FEAT'), /AUTH|PBSZ|PROT/);
      p.close();
    } finally {
      await plain.close();
    }
  });

  test('USER/PASS in clear when TLS is required: 530, a security event, the password never checked', async () => {
    const c = await RawClient.connect(t.port);
    await c.reply();
    const calls = authCalls.length;
    assert.match(await c.cmd('USER alice'), TLS_REQUIRED);
    assert.match(await c.cmd(`PASS ${PASSWORD}`), TLS_REQUIRED);
    // An unknown name gets exactly the same answer: the gate does not reveal which users exist.
    const unknown = await c.cmd('USER nosuchuser');
    const known = await c.cmd('USER alice');
    assert.equal(unknown, known);
    // Pipelined USER+PASS: same.
    c.write(`USER alice\r\nPASS ${PASSWORD}\r\n`);
    assert.match(await c.reply(), TLS_REQUIRED);
    assert.match(await c.reply(), TLS_REQUIRED);
    assert.equal(authCalls.length, calls, 'the user store was never asked to verify a password');
    assert.ok(t.eventsNamed('security').some((e) => e.event === 'plaintext-login-refused' && e.user === 'alice'));
    assert.equal(t.eventsNamed('login-failed').length, 0);
    // One line per refused USER: the security event, no 'refused' line beside it.
    assert.equal(t.eventsNamed('refused').filter((e) => e.command === 'USER').length, 0);
    c.close();
  });

  test('a user whose override says optional may log in and transfer in clear', async () => {
    const c = await RawClient.loggedIn(t.port, 'carol');
    const port = passivePort(await c.cmd('EPSV'));
    const { connect } = await import('node:net');
    const data = connect(port, '127.0.0.1');
    let listing = '';
    data.on('data', (d) => (listing += d));
    c.write('NLST\r\n');
    assert.match(await c.reply(), /^150/);
    assert.match(await c.reply(), /^226/);
    c.close();
  });

  test('TLS optional on the server, required for one user: neither USER nor PASS tells which names exist; PASS in clear is a failed login', async () => {
    const o = await startTlsServer({ implicit: false, config: { tls: { control: 'optional' }, guard: { failed_login_delay_ms: 0 } } });
    try {
      setUserTls(o, 'bob', { tls_control: 'required' });
      const c = await RawClient.connect(o.port);
      await c.reply();
      // Known (needs TLS), unknown and known (no TLS needed): the same 331, so no name is given away for free.
      const replies = [await c.cmd('USER bob'), await c.cmd('USER nosuchuser'), await c.cmd('USER alice')];
      assert.deepEqual(new Set(replies).size, 1, replies.join(' | '));
      assert.match(replies[0]!, /^331 /);
      // PASS in clear: the answer a wrong password or an unknown name gets, and the password is not checked.
      assert.match(await c.cmd('USER bob'), /^331 /);
      const bob = await c.cmd(`PASS ${PASSWORD}`);
      assert.match(await c.cmd('USER nosuchuser'), /^331 /);
      assert.equal(await c.cmd(`PASS ${PASSWORD}`), bob);
      assert.match(bob, /^530 Login incorrect/);
      assert.ok(o.eventsNamed('security').some((e) => e.event === 'plaintext-login-refused' && e.user === 'bob'));
      assert.deepEqual(o.eventsNamed('login-failed').map((e) => [e.user, e.reason]), [
        ['bob', 'TLS required for this user'],
        ['nosuchuser', 'bad credentials'],
      ]);
      assert.match(await c.cmd('USER alice'), /^331 /);
      assert.match(await c.cmd(`PASS ${PASSWORD}`), /^230 /);
      c.close();
    } finally {
      await o.close();
    }
  });

  test('anonymous in clear only when anonymous.allow_plaintext', async () => {
    const c = await RawClient.connect(t.port);
    await c.reply();
    assert.match(await c.cmd('USER anonymous'), TLS_REQUIRED);
    c.close();
    const t2 = await startTlsServer({ implicit: false, config: { anonymous: { enabled: true, allow_plaintext: true } } });
    try {
      const a = await RawClient.connect(t2.port);
      await a.reply();
      assert.match(await a.cmd('USER anonymous'), /^331/);
      a.close();
    } finally {
      await t2.close();
    }
  });

  test('a user store whose lookup fails: the server policy decides at USER, and the failure is logged', async () => {
    for (const control of ['required', 'optional'] as const) {
      const t3 = await startTlsServer({ implicit: false, config: { tls: { control } } });
      try {
        t3.users.lookup = async () => {
          throw new Error('user database down');
        };
        const c = await RawClient.connect(t3.port);
        await c.reply();
        if (control === 'required') assert.match(await c.cmd('USER alice'), TLS_REQUIRED);
        else {
          assert.match(await c.cmd('USER alice'), /^331/);
          assert.match(await c.cmd(`PASS ${PASSWORD}`), /^230/);
        }
        const errors = t3.eventsNamed('server-error');
        assert.deepEqual(errors.map((e) => [e.where, (e.error as Error).message]), [['users.lookup (TLS login gate)', 'user database down']]);
        assert.match(await c.cmd('NOOP'), /^200/);
        c.close();
      } finally {
        await t3.close();
      }
    }
  });

  test('PBSZ and PROT: order, levels, and CCC refused', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.reply();
    assert.match(await raw.cmd('PBSZ 0'), /^503/);
    assert.match(await raw.cmd('PROT P'), /^503/);
    assert.match(await raw.cmd('AUTH KERBEROS_V4'), /^504/);
    raw.close();
    const c = await TlsLineClient.explicit(t.port);
    try {
      assert.match(await c.cmd('PROT P'), /^503 /, 'PROT before PBSZ');
      assert.match(await c.cmd('PBSZ 0'), /^200 PBSZ=0/);
      assert.match(await c.cmd('PROT S'), /^504 /);
      assert.match(await c.cmd('PROT E'), /^504 /);
      assert.match(await c.cmd('PROT X'), /^501 /);
      assert.match(await c.cmd('PROT P'), /^200 /);
      assert.match(await c.cmd('CCC'), /^530 /, 'CCC is not answered before login');
      assert.match(await c.cmd('AUTH TLS'), /^503 /);
      await c.login('alice');
      assert.match(await c.cmd('CCC'), /^534 /);
      assert.match(await c.cmd('NOOP'), /^200/);
    } finally {
      c.close();
    }
  });

  test('who(): an encrypted session shows as TLS, with its user once logged in; a clear one as not', async () => {
    const secure = await TlsLineClient.explicit(t.port);
    const clear = await RawClient.connect(t.port);
    try {
      await clear.reply();
      await secure.login('alice');
      const sessions = t.server.who();
      const mine = sessions.find((s) => s.user === 'alice');
      assert.equal(mine?.tls, true);
      assert.ok(sessions.some((s) => s.user === undefined && s.tls === false), JSON.stringify(sessions));
    } finally {
      secure.close();
      clear.close();
    }
  });

  test('tls.data required: a clear data connection (PROT C) is refused with 521', async () => {
    const c = await TlsLineClient.explicit(t.port);
    try {
      await c.login('alice');
      assert.match(await c.cmd('EPSV'), /^521 .*PROT P/);
      assert.match(await c.cmd('PASV'), /^521 /);
      assert.match(await c.cmd('EPRT |1|127.0.0.1|50000|'), /^521 /);
      await c.cmd('PBSZ 0');
      await c.cmd('PROT P');
      const port = passivePort(await c.cmd('EPSV'));
      // Back to clear after the passive port was opened: refused before the 150, and the port is
      // closed, never accepting the clear connection.
      assert.match(await c.cmd('PROT C'), /^200 /);
      assert.match(await c.cmd('LIST'), /^521 .*PROT P/);
      assert.ok(await refusesConnections(port), 'the prepared passive port still accepts');
      assert.match(await c.cmd('NOOP'), /^200/);
    } finally {
      c.close();
    }
  });

  test('bytes pipelined after AUTH TLS are discarded, never executed after the handshake', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.reply();
    raw.write('AUTH TLS\r\nUSER alice\r\nSYST\r\nMKD injected\r\n');
    assert.match(await raw.reply(), /^234/);
    raw.socket.removeAllListeners('data');
    const c = await TlsLineClient.wrap(raw.socket);
    try {
      // The first reply over TLS answers our NOOP: none of the pipelined commands ran.
      assert.match(await c.cmd('NOOP'), /^200 NOOP/);
      assert.match(await c.cmd('PASS x'), /^503|^530/);
    } finally {
      c.close();
    }
  });

  test('clear bytes sent after AUTH but arriving after the reply: never run as commands', async () => {
    const raw = await RawClient.connect(t.port);
    await raw.reply();
    raw.write('AUTH TLS\r\n');
    await new Promise((r) => setTimeout(r, 30));
    raw.write('SYST\r\n');
    const r = await raw.reply();
    assert.match(r, /^234/);
    // The server now expects a ClientHello and gets "SYST": it closes, without a 215.
    assert.equal(await raw.waitClosed(5000), true);
    assert.equal(await raw.reply(1000).catch(() => ''), '');
  });
});
