import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attachLogger, createLogger } from '../../src/observe/logger.js';
import { passivePort, RawClient } from '../helpers/clients.js';
import { startServer, type TestServer } from '../helpers/server.js';

const FILTER = fileURLToPath(new URL('../../contrib/fail2ban/filter.d/moat.conf', import.meta.url));

/** The filter's failregex lines, as JS regexes: fail2ban's <HOST> becomes a named capture group. */
async function failRegexes(): Promise<RegExp[]> {
  const lines = (await readFile(FILTER, 'utf8')).split('\n');
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    const start = /^failregex\s*=\s*(.*)$/.exec(line);
    if (start) {
      inside = true;
      if (start[1]) out.push(start[1]);
    } else if (inside && /^\s+\S/.test(line)) out.push(line.trim());
    else inside = false;
  }
  return out.map((r) => new RegExp(r.replace(/%%/g, '%').replace('<HOST>', '(?<host>[0-9A-Fa-f:.]+)')));
}

function hostOf(regexes: RegExp[], line: string): string | undefined {
  for (const r of regexes) {
    const m = r.exec(line);
    if (m) return m.groups!.host;
  }
  return undefined;
}

describe('fail2ban filter', () => {
  let t: TestServer;
  let logFile: string;
  before(async () => {
    t = await startServer({ config: { guard: { failed_login_delay_ms: 10 } } });
    logFile = join(t.dir, 'moat.log');
    attachLogger(t.server.events, createLogger({ level: 'info', file: logFile }));
  });
  after(() => t.close());

  test('its failregex matches the real log lines of failed logins, bans, bounces and refused data connections', async () => {
    // A failed login from 127.0.0.2, with a user name that tries to fake an "ip" field.
    const a = await RawClient.connect(t.port, '127.0.0.1', '127.0.0.2');
    await a.reply();
    await a.cmd('USER x","ip":"10.9.9.9');
    assert.match(await a.cmd('PASS nope'), /^530 /);
    a.close();
    // A bounce attempt and a foreign passive connection (from 127.0.0.9) on a session of 127.0.0.3.
    const b = await RawClient.connect(t.port, '127.0.0.1', '127.0.0.3');
    await b.reply();
    await b.login();
    assert.match(await b.cmd('PORT 10,0,0,1,200,10'), /^504 /);
    const port = passivePort(await b.cmd('EPSV'));
    const thief = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.9' });
    thief.on('error', () => undefined);
    await new Promise((r) => thief.once('close', r));
    b.close();
    // A ban.
    t.server.guard.ban('127.0.0.12', 'test');
    // Bans earned by offences: pre-login commands (127.0.0.13) and failed logins (127.0.0.14).
    const scanner = await RawClient.connect(t.port, '127.0.0.1', '127.0.0.13');
    await scanner.reply();
    for (let i = 0; i < 10 && !scanner.closed; i++) await scanner.cmd('SITE CPFR /etc/passwd');
    scanner.close();
    for (let round = 0; round < 4; round++) {
      const guesser = await RawClient.connect(t.port, '127.0.0.1', '127.0.0.14');
      if (!(await guesser.reply()).startsWith('220')) break;
      for (let i = 0; i < 3 && !guesser.closed; i++) {
        await guesser.cmd('USER alice');
        await guesser.cmd('PASS wrong');
      }
      guesser.close();
    }
    await new Promise((r) => setTimeout(r, 100));

    const lines = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
    const regexes = await failRegexes();
    assert.equal(regexes.length, 3);
    const hits = lines.map((l) => ({ l, host: hostOf(regexes, l), event: (JSON.parse(l) as { event?: string }).event }));
    const hostFor = (event: string) => hits.find((h) => h.event === event)?.host;
    assert.equal(hostFor('login-failed'), '127.0.0.2');
    assert.equal(hostFor('bounce-attempt'), '127.0.0.3');
    assert.equal(hostFor('data-connection-refused'), '127.0.0.9', 'the foreign address, not the victim');
    const banned = hits.filter((h) => h.event === 'ban').map((h) => h.host);
    assert.deepEqual(banned.sort(), ['127.0.0.12', '127.0.0.13', '127.0.0.14']);
    // Ordinary lines do not match, and the faked field is never captured.
    for (const event of ['session-open', 'login', 'session-close', 'listening']) {
      for (const h of hits.filter((x) => x.event === event)) assert.equal(h.host, undefined, h.l);
    }
    assert.ok(!hits.some((h) => h.host === '10.9.9.9'));
    // fail2ban finds the time through its datepattern.
    assert.ok(lines.every((l) => /"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"/.test(l)));
  });
});
