import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { binaryClient, epsvConnection, passivePort, RawClient, refusesConnections } from '../helpers/clients.js';
import { PASSWORD, startServer, withServer, type TestServer } from '../helpers/server.js';

describe('control connection protocol', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: { limits: { max_line_length: 512, max_oversize_lines: 2 } } });
  });
  after(() => t.close());

  async function greeted(): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    const greeting = await c.reply();
    assert.match(greeting, /^220 /);
    return c;
  }

  test('greeting carries the banner and no version', async () => {
    const c = await greeted();
    c.close();
    const c2 = await RawClient.connect(t.port);
    const g = await c2.reply();
    assert.equal(g, '220 Moat FTP server ready.');
    assert.doesNotMatch(g, /\d+\.\d+/);
    c2.close();
  });

  test('commands before login get 530, pre-login commands are answered', async () => {
    const c = await greeted();
    for (const cmd of ['PWD', 'CWD /', 'LIST', 'RETR x', 'STOR x', 'PASV', 'DELE x', 'SITE CHMOD 777 x', 'MKD x', 'STAT']) {
      assert.match(await c.cmd(cmd), /^530 /, cmd);
    }
    assert.match(await c.cmd('NOOP'), /^200 /);
    assert.match(await c.cmd('SYST'), /^215 UNIX/);
    assert.match(await c.cmd('FEAT'), /^211-Features:[\s\S]*\n211 End$/);
    assert.match(await c.cmd('HELP'), /^214-/);
    assert.match(await c.cmd('OPTS UTF8 ON'), /^200 /);
    c.close();
  });

  test('reply codes: unknown 500, unimplemented 502, wrong state 503, bad argument 501', async () => {
    const c = await greeted();
    assert.match(await c.cmd('BOGUS'), /^500 /);
    assert.match(await c.cmd('SMNT /x'), /^530 /, 'not implemented, but before login that is not said');
    // No TLS on this server: RFC 2228's commands are "not implemented", before login too.
    assert.match(await c.cmd('AUTH TLS'), /^502 /);
    assert.match(await c.cmd('PBSZ 0'), /^502 /);
    assert.match(await c.cmd('PASS secret'), /^503 /);
    assert.match(await c.cmd('USER'), /^501 /);
    await c.login();
    assert.match(await c.cmd('SMNT /x'), /^502 /);
    assert.match(await c.cmd('RNTO x'), /^503 /);
    assert.match(await c.cmd('MKD renamed-src'), /^257 /);
    assert.match(await c.cmd('RNFR renamed-src'), /^350 /);
    assert.match(await c.cmd('NOOP'), /^200 /);
    assert.match(await c.cmd('RNTO renamed-dst'), /^503 /, 'RNTO must follow RNFR directly');
    assert.match(await c.cmd('RMD renamed-src'), /^250 /);
    assert.match(await c.cmd('NOOP extra'), /^501 /);
    assert.match(await c.cmd('REST -5'), /^501 /);
    assert.match(await c.cmd('TYPE Q'), /^501 /);
    assert.match(await c.cmd('TYPE E'), /^504 /);
    assert.match(await c.cmd('RETR nothing-here'), /^550 /, 'a missing file is 550 even without PASV/PORT');
    assert.match(await c.cmd('USER bob'), /^530 /);
    c.close();
  });

  test('pipelined commands are answered strictly in order', async () => {
    const c = await greeted();
    c.write(`USER alice\r\nPASS correct horse battery\r\nMKD p\r\nCWD p\r\nPWD\r\nCDUP\r\nRMD p\r\nNOOP\r\n`);
    const replies = [];
    for (let i = 0; i < 8; i++) replies.push((await c.reply()).slice(0, 3));
    assert.deepEqual(replies, ['331', '230', '257', '250', '257', '250', '250', '200']);
    c.close();
  });

  test('bare LF ends a line; Telnet IAC sequences are stripped', async () => {
    const c = await greeted();
    c.write('NOOP\n');
    assert.match(await c.reply(), /^200 /);
    // IAC IP IAC DM before the command (what clients send before ABOR), IAC WILL x inside.
    c.write(Buffer.concat([Buffer.from([0xff, 0xf4, 0xff, 0xf2]), Buffer.from('NO'), Buffer.from([0xff, 0xfb, 0x01]), Buffer.from('OP\r\n')]));
    assert.match(await c.reply(), /^200 /);
    await c.login();
    // What is left when the kernel takes the urgent byte out of the Synch: a bare DM after IAC IP,
    // or a lone IAC (its DM went out of band) right before the command.
    c.write(Buffer.concat([Buffer.from([0xff, 0xf4, 0xf2]), Buffer.from('ABOR\r\n')]));
    assert.match(await c.reply(), /^225 /);
    c.write(Buffer.concat([Buffer.from([0xff, 0xf4, 0xff]), Buffer.from('ABOR\r\n')]));
    assert.match(await c.reply(), /^225 /);
    // A DM anywhere else is a byte of the line (here: not a command).
    c.write(Buffer.concat([Buffer.from('NO'), Buffer.from([0xf2]), Buffer.from('OP\r\n')]));
    assert.match(await c.reply(), /^500 /);
    c.close();
  });

  test('a line that is not UTF-8 is refused with 501: two such names never meet in one file', async () => {
    const c = await greeted();
    c.write(Buffer.concat([Buffer.from('USER al'), Buffer.from([0xe9]), Buffer.from('ce\r\n')]));
    assert.match(await c.reply(), /^501 /);
    await c.login();
    // IAC IAC is a literal 0xFF byte.
    for (const bad of [[0xff, 0xff], [0xfe], [0xc3]]) {
      c.write(Buffer.concat([Buffer.from('MKD latin'), Buffer.from(bad), Buffer.from('\r\n')]));
      assert.match(await c.reply(), /^501 /);
    }
    // Valid UTF-8, including a real U+FFFD, is a name like any other.
    assert.match(await c.cmd('MKD utf8-\u00e9-\uFFFD'), /^257 /);
    assert.deepEqual((await readdir(t.root)).filter((n) => n.startsWith('latin') || n.startsWith('utf8-')), ['utf8-\u00e9-\uFFFD']);
    assert.ok(t.eventsNamed('refused').some((e) => e.command === 'MKD' && e.reason === 'invalid UTF-8'));
    c.close();
  });

  test('an over-long line is answered 500 and dropped whole; repeated abuse disconnects', async () => {
    const c = await greeted();
    // The tail after the limit must not run as a command.
    c.write('NOOP ' + 'A'.repeat(600) + 'QUIT\r\n');
    assert.match(await c.reply(), /^500 .*too long/i);
    assert.match(await c.cmd('NOOP'), /^200 /);
    c.write('X'.repeat(2000) + '\r\n');
    // The second of max_oversize_lines = 2 is answered too, then the session ends.
    assert.match(await c.reply(), /^500 .*too long/i);
    assert.match(await c.reply(), /^421 /);
    assert.ok(await c.waitClosed());
    const events = t.eventsNamed('security').filter((e) => e.event === 'line-too-long');
    assert.ok(events.length >= 2);
  });

  test('NUL or CR inside an argument is refused with 501', async () => {
    const c = await RawClient.loggedIn(t.port);
    c.write('MKD a\0b\r\n');
    assert.match(await c.reply(), /^501 /);
    c.write('MKD a\rb\r\n');
    assert.match(await c.reply(), /^501 /);
    c.close();
  });

  test('multi-line replies follow RFC 959 framing', async () => {
    const c = await RawClient.loggedIn(t.port);
    const stat = await c.cmd('STAT');
    const lines = stat.split('\r\n');
    assert.match(lines[0]!, /^211-/);
    assert.match(lines.at(-1)!, /^211 /);
    for (const middle of lines.slice(1, -1)) assert.doesNotMatch(middle, /^\d{3}[ -]/);
    c.close();
  });

  test('ABOR and STAT are answered while a transfer runs', async () => {
    await writeFile(join(t.root, 'slow.bin'), Buffer.alloc(64 * 1024 * 1024, 1));
    const c = await binaryClient(t.port);
    const port = passivePort(await c.cmd('EPSV'));
    const data = connect({ port, host: '127.0.0.1' });
    data.pause(); // do not read: the transfer stalls on backpressure and stays "in progress"
    await new Promise((r) => data.once('connect', r));
    assert.match(await c.cmd('RETR slow.bin'), /^150 /);
    const stat = await c.cmd('STAT');
    assert.match(stat, /^213 .*RETR \/slow\.bin/);
    c.write('ABOR\r\n');
    assert.match(await c.reply(), /^426 /);
    assert.match(await c.reply(), /^226 /);
    data.destroy();
    assert.match(await c.cmd('NOOP'), /^200 /);
    const transfer = t.eventsNamed('download').at(-1)!;
    assert.equal(transfer.result, 'aborted');
    c.close();
  });

  test('STAT during a transfer waits its turn behind commands sent before it; ABOR does not', async () => {
    await writeFile(join(t.root, 'slow.bin'), Buffer.alloc(64 * 1024 * 1024, 1));
    const c = await binaryClient(t.port);
    const port = passivePort(await c.cmd('EPSV'));
    const data = connect({ port, host: '127.0.0.1' });
    data.pause();
    await new Promise((r) => data.once('connect', r));
    assert.match(await c.cmd('RETR slow.bin'), /^150 /);
    c.write('NOOP\r\nPWD\r\nSTAT\r\n');
    // Before the fix the STAT jumped the queue: its 213 came first, where a client expects the NOOP's 200.
    await assert.rejects(c.reply(500), /no reply/, 'nothing is answered while the transfer runs');
    c.write('ABOR\r\n');
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push((await c.reply()).slice(0, 3));
    data.destroy();
    assert.equal(replies[0], '426');
    assert.deepEqual([...replies].sort(), ['200', '211', '226', '257', '426']);
    assert.ok(replies.indexOf('200') < replies.indexOf('257') && replies.indexOf('257') < replies.indexOf('211'), replies.join(' '));
    c.close();
  });

  for (const [command, answer] of [['ABOR', '226'], ['QUIT', '221']] as const) {
    test(`${command} before the client opened the passive connection: 426, ${answer}, and the port is given back at once`, async () => {
      await writeFile(join(t.root, 'waiting.bin'), 'x');
      const c = await RawClient.loggedIn(t.port);
      const port = passivePort(await c.cmd('EPSV'));
      assert.match(await c.cmd('RETR waiting.bin'), /^150 /);
      c.write(`${command}\r\n`);
      // Not held until timeouts.data_connect (30 s; QUIT waited for it before, then 425 and 221).
      assert.match(await c.reply(3000), /^426 /);
      assert.match(await c.reply(3000), new RegExp(`^${answer} `));
      assert.ok(await refusesConnections(port), 'the passive port still accepts');
      assert.equal(t.eventsNamed('download').at(-1)!.result, 'aborted');
      if (command === 'QUIT') assert.ok(await c.waitClosed(3000));
      c.close();
    });
  }

  test('a transfer command and ABOR sent in one write: the transfer is aborted at once, replies in order', async () => {
    const c = await RawClient.loggedIn(t.port);
    for (const command of ['STOR piped-abort.bin', 'LIST']) {
      const port = passivePort(await c.cmd('EPSV'));
      // Before the fix the ABOR waited behind the transfer, which waited timeouts.data_connect (30 s) for a connection.
      c.write(`${command}\r\nABOR\r\nNOOP\r\n`);
      const replies = [];
      for (let i = 0; i < 4; i++) replies.push((await c.reply()).slice(0, 3));
      assert.deepEqual(replies, ['150', '426', '226', '200'], command);
      // Behind another line, ABOR still goes ahead, as it does once the transfer runs.
      const again = passivePort(await c.cmd('EPSV'));
      c.write(`${command}\r\nNOOP\r\nABOR\r\n`);
      const more = [];
      for (let i = 0; i < 4; i++) more.push((await c.reply(5000)).slice(0, 3));
      assert.deepEqual(more, ['150', '426', '226', '200'], `${command}, NOOP, ABOR`);
      assert.ok(await refusesConnections(again));
      assert.ok(await refusesConnections(port), `${command}: the passive port is given back`);
    }
    await assert.rejects(stat(join(t.root, 'piped-abort.bin')), { code: 'ENOENT' });
    assert.equal(t.eventsNamed('upload').at(-1)!.result, 'aborted');
    c.close();
  });

  test('a transfer without PASV/PORT is refused with 425 before any 150, and creates nothing', async () => {
    await writeFile(join(t.root, 'there.txt'), 'x');
    const c = await RawClient.loggedIn(t.port);
    for (const cmd of ['RETR there.txt', 'STOR nodata-stor.txt', 'APPE nodata-appe.txt', 'STOU nodata', 'LIST', 'NLST', 'MLSD']) {
      assert.match(await c.cmd(cmd), /^425 /, cmd);
    }
    assert.match(await c.cmd('NOOP'), /^200 /);
    const left = (await readdir(t.root)).filter((n) => n.startsWith('nodata'));
    assert.deepEqual(left, []);
    assert.ok(t.eventsNamed('refused').some((e) => e.command === 'APPE' && e.code === 425));
    c.close();
  });

  test('MFMT answers the time the file system kept, the one MDTM then reports', async () => {
    await writeFile(join(t.root, 'mfmt.txt'), 'x');
    const c = await RawClient.loggedIn(t.port);
    for (const asked of ['19000101000000', '20200229120000', '99991231235959']) {
      const set = /^213 Modify=(\d{14}(?:\.\d+)?); mfmt\.txt$/.exec(await c.cmd(`MFMT ${asked} mfmt.txt`));
      assert.ok(set, asked);
      assert.equal(await c.cmd('MDTM mfmt.txt'), `213 ${set[1]}`);
    }
    c.close();
  });

  test('a name that starts with a space is found by LIST/NLST/STAT as by every other command; the home is never offered for RNFR', async () => {
    await writeFile(join(t.root, ' lead.txt'), 'lead');
    const c = await RawClient.loggedIn(t.port);
    assert.match(await c.cmd('SIZE  lead.txt'), /^213 4$/);
    assert.match(await c.cmd('STAT  lead.txt'), /^213-[^]* lead\.txt\r\n213 /);
    const data = await epsvConnection(c);
    const listed = new Promise<string>((resolve) => {
      let text = '';
      data.on('data', (d: Buffer) => (text += d.toString()));
      data.on('close', () => resolve(text));
    });
    assert.match(await c.cmd('NLST  lead.txt'), /^150 /);
    assert.match(await c.reply(), /^226 /);
    assert.equal(await listed, ' lead.txt\r\n');
    assert.match(await c.cmd('MLST /'), /perm=[^;df]*;/);
    assert.match(await c.cmd('RNFR /'), /^550 /);
    assert.match(await c.cmd('RNTO elsewhere'), /^503 /);
    c.close();
  });

  test('a client that half-closes after pipelining its commands gets every reply, in order, then the close', async () => {
    const codes = (text: string): string[] => text.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3));
    const s = connect({ port: t.port, host: '127.0.0.1' });
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    const closed = new Promise((r) => s.once('close', r));
    const until = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 500 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(/^220 /m);
    s.write(`USER alice\r\nPASS ${PASSWORD}\r\nSTAT /\r\nTYPE I\r\nEPSV\r\n`);
    await until(/^229 /m);
    const data = connect({ port: passivePort(/^229 .*$/m.exec(text)![0]), host: '127.0.0.1' });
    await new Promise((r) => data.once('connect', r));
    // The upload's commands, then more, then the half-close, all while the data connection is open.
    s.write('STOR halfclosed.bin\r\nNOOP\r\nQUIT\r\n');
    s.end();
    await until(/^150 /m);
    data.end(Buffer.alloc(100_000, 7));
    await closed;
    assert.deepEqual(codes(text), ['220', '331', '230', '213', '200', '229', '150', '226', '200', '221'], text);
    assert.equal((await readFile(join(t.root, 'halfclosed.bin'))).length, 100_000);
  });

  test('STOU keeps the folder of its hint', async () => {
    const c = await RawClient.loggedIn(t.port);
    assert.match(await c.cmd('MKD stou-dir'), /^257 /);
    const data = await epsvConnection(c);
    const opening = await c.cmd('STOU stou-dir/report');
    assert.match(opening, /^150 FILE: report\.[0-9a-f]{8}$/);
    data.end('unique');
    assert.match(await c.reply(), /^226 /);
    const name = opening.slice('150 FILE: '.length);
    assert.equal(await readFile(join(t.root, 'stou-dir', name), 'utf8'), 'unique');
    c.close();
  });

  test('a client that leaves while its RETR waits for the data connection gives the passive port back at once', async () => {
    await writeFile(join(t.root, 'waiting.bin'), 'x');
    const passive = t.server.context.passive;
    const ports: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await RawClient.loggedIn(t.port);
      const port = passivePort(await c.cmd('EPSV'));
      ports.push(port);
      assert.match(await c.cmd('RETR waiting.bin'), /^150 /);
      c.close();
    }
    // Not at timeouts.data_connect (30 s): a client repeating this would hold every port of the range.
    for (let i = 0; i < 50 && passive.open > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(passive.open, 0);
    for (const port of ports) assert.ok(await refusesConnections(port), `passive port ${port} still accepts`);
  });

  test('refusals a handler answers itself are logged too: REST past the end of a small file (554), a bad REST (501)', async () => {
    await writeFile(join(t.root, 'short.txt'), 'short');
    const c = await RawClient.loggedIn(t.port);
    assert.match(await c.cmd('REST abc'), /^501 /);
    assert.match(await c.cmd('REST 100'), /^350 /);
    assert.match(await c.cmd('RETR short.txt'), /^554 /);
    assert.match(await c.cmd('NOOP'), /^200 /);
    const refused = t.eventsNamed('refused');
    assert.ok(refused.some((e) => e.command === 'REST' && e.code === 501));
    assert.ok(refused.some((e) => e.command === 'RETR' && e.code === 554 && /REST beyond end of file/.test(e.reason)));
    c.close();
  });

  test('REST past the end before STOR is 554, a name too long or a folder moved into itself 553: permanent, not a local error', async () => {
    await writeFile(join(t.root, 'five.txt'), '12345');
    const c = await RawClient.loggedIn(t.port);
    for (const [offset, name] of [['6', 'five.txt'], ['5', 'rest-new.txt']] as const) {
      assert.match(await c.cmd(`REST ${offset}`), /^350 /);
      assert.match(await c.cmd('EPSV'), /^229 /);
      assert.match(await c.cmd(`STOR ${name}`), /^554 /, `REST ${offset} + STOR ${name}`);
    }
    const long = 'n'.repeat(300);
    assert.match(await c.cmd(`MKD ${long}`), /^553 /);
    assert.match(await c.cmd('EPSV'), /^229 /);
    assert.match(await c.cmd(`STOR ${long}`), /^553 /);
    assert.match(await c.cmd(`DELE ${long}`), /^553 /);
    assert.match(await c.cmd('MKD inside-self'), /^257 /);
    assert.match(await c.cmd('RNFR inside-self'), /^350 /);
    assert.match(await c.cmd('RNTO inside-self/sub'), /^553 /);
    assert.match(await c.cmd('RMD inside-self'), /^250 /);
    assert.deepEqual((await readdir(t.root)).filter((n) => n.startsWith('rest-new') || n.startsWith('nnn')), []);
    assert.ok(!t.events.some((e) => e.name === 'session-error'), 'logged as an internal error');
    c.close();
  });

  test('QUIT during a download: the transfer finishes with its 226, then the 221 (RFC 959)', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 7);
    await writeFile(join(t.root, 'quit-during.bin'), body);
    const c = await binaryClient(t.port);
    const port = passivePort(await c.cmd('EPSV'));
    const data = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    data.on('data', (d: Buffer) => chunks.push(d));
    const dataClosed = new Promise((r) => data.once('close', r));
    await new Promise((r) => data.once('connect', r));
    assert.match(await c.cmd('RETR quit-during.bin'), /^150 /);
    c.write('QUIT\r\n');
    assert.match(await c.reply(), /^226 /);
    assert.match(await c.reply(), /^221 /);
    assert.ok(await c.waitClosed());
    await dataClosed;
    assert.equal(Buffer.concat(chunks).length, body.length);
  });

  for (const leave of ['QUIT', 'half-close', 'close'] as const) {
    test(`an upload whose data connection closed is kept when the client leaves at once (${leave})`, async () => {
      const name = `leave-${leave}.bin`;
      const body = Buffer.alloc(2 * 1024 * 1024, leave.length);
      const c = await binaryClient(t.port);
      const data = await epsvConnection(c);
      assert.match(await c.cmd(`STOR ${name}`), /^150 /);
      data.end(body);
      await new Promise((r) => data.once('close', r));
      if (leave === 'QUIT') {
        c.write('QUIT\r\n');
        assert.match(await c.reply(), /^226 /);
        assert.match(await c.reply(), /^221 /);
      } else if (leave === 'half-close') c.socket.end();
      else c.close();
      const deadline = Date.now() + 5000;
      while (!t.eventsNamed('upload').some((e) => e.path === `/${name}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const event = t.eventsNamed('upload').find((e) => e.path === `/${name}`);
      assert.equal(event?.result, 'ok');
      assert.deepEqual(await readFile(join(t.root, name)), body);
      c.close();
    });
  }

  test('a transfer command followed at once by FIN gives up its passive port, temp file and session at once', async () => {
    await writeFile(join(t.root, 'fin-retr.bin'), 'x');
    for (const command of ['STOR fin-stor.bin', 'RETR fin-retr.bin', 'LIST']) {
      const c = await RawClient.loggedIn(t.port);
      const port = passivePort(await c.cmd('EPSV'));
      const before = t.server.sessions.size;
      // The FIN lands while the command is still being prepared (before its 150).
      c.socket.end(`${command}\r\n`);
      assert.ok(await c.waitClosed(5000), `${command}: the session ended`);
      // Before the fix all three were held for timeouts.data_connect (30 s): a burst of these took every passive port.
      const deadline = Date.now() + 3000;
      while (t.server.sessions.size >= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(t.server.sessions.size, before - 1, `${command}: gone from the registry`);
      assert.ok(await refusesConnections(port), `${command}: the passive port is closed`);
      c.close();
    }
    assert.deepEqual((await readdir(t.root)).filter((n) => n.startsWith('.moat-upload') || n === 'fin-stor.bin'), []);
  });

  test('a transfer that outlives its control connection still counts as a session until it ends', async () => {
    const c = await binaryClient(t.port);
    const data = await epsvConnection(c);
    assert.match(await c.cmd('STOR outlives.bin'), /^150 /);
    data.write(Buffer.alloc(1000, 1));
    const before = t.server.sessions.size;
    c.socket.end();
    await c.waitClosed();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(t.server.sessions.size, before, 'the session left the registry (and the limits) while its upload ran');
    data.end(Buffer.alloc(1000, 2));
    const deadline = Date.now() + 5000;
    while (t.server.sessions.size >= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.server.sessions.size, before - 1);
    assert.equal((await readFile(join(t.root, 'outlives.bin'))).length, 2000);
  });

  test('a vanished client mid-transfer leaves the server serving others', async () => {
    const c = await RawClient.loggedIn(t.port);
    const port = passivePort(await c.cmd('PASV'));
    const data = connect({ port, host: '127.0.0.1' });
    await new Promise((r) => data.once('connect', r));
    c.write('RETR slow.bin\r\n');
    await c.reply();
    c.close();
    data.destroy();
    const other = await greeted();
    await other.login();
    assert.match(await other.cmd('PWD'), /^257 /);
    other.close();
  });

  test('an HTTP request on the control port is closed with one log line', async () => {
    const c = await greeted();
    c.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    assert.equal(await c.reply(), '');
    assert.ok(await c.waitClosed());
    assert.equal(t.eventsNamed('security').filter((e) => e.event === 'http-request').length, 1);
  });

  test('QUIT says goodbye and the server closes at once, without waiting for the client', async () => {
    const c = await greeted();
    assert.match(await c.cmd('QUIT'), /^221 /);
    const started = Date.now();
    assert.ok(await c.waitClosed());
    // Well under the 2 s a client that never reads gets: the server closes first, as RFC 959 has it.
    assert.ok(Date.now() - started < 500, `closed after ${Date.now() - started} ms`);
  });
});

describe('data connection security', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    await writeFile(join(t.root, 'secret.txt'), 'top secret');
  });
  after(() => t.close());

  test('a passive connection from another address is refused and logged', async () => {
    const c = await RawClient.loggedIn(t.port);
    const port = passivePort(await c.cmd('EPSV'));
    const thief = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    const got: Buffer[] = [];
    thief.on('data', (d) => got.push(d));
    thief.on('error', () => undefined);
    await new Promise((r) => thief.once('close', r));
    assert.equal(Buffer.concat(got).length, 0);
    const refused = t.eventsNamed('security').find((e) => e.event === 'data-connection-refused');
    assert.ok(refused, 'security event');
    assert.match(refused.detail ?? '', /127\.0\.0\.2/);
    assert.equal(refused.offender, '127.0.0.2', 'the guard scores the foreign address, not the client');
    // The rightful client still gets its file through the same listener.
    const data = connect({ port, host: '127.0.0.1' });
    const body: Buffer[] = [];
    data.on('data', (d) => body.push(d));
    const closed = new Promise((r) => data.once('close', r));
    assert.match(await c.cmd('RETR secret.txt'), /^150 /);
    assert.match(await c.reply(), /^226 /);
    await closed;
    assert.equal(Buffer.concat(body).toString(), 'top secret');
    c.close();
  });

  test('PORT and EPRT to another address or a low port are refused', async () => {
    const c = await RawClient.loggedIn(t.port);
    assert.match(await c.cmd('PORT 127,0,0,2,200,10'), /^504 /);
    assert.match(await c.cmd('PORT 10,0,0,1,200,10'), /^504 /);
    assert.match(await c.cmd('PORT 127,0,0,1,0,21'), /^504 /);
    assert.match(await c.cmd('EPRT |1|127.0.0.3|50000|'), /^504 /);
    // An IPv6 target from an IPv4 client: the client's own address is not of that family (522, not scored).
    assert.match(await c.cmd('EPRT |2|::1|50000|'), /^522 Network protocol not supported, use \(1\)/);
    assert.match(await c.cmd('EPRT |3|x|1|'), /^522 /);
    assert.match(await c.cmd('PORT 127,0,0,1,200,10'), /^200 /);
    // The client's own address written otherwise is still its own: not a bounce.
    assert.match(await c.cmd('PORT 0127,0,0,001,200,10'), /^200 /);
    assert.match(await c.cmd('EPRT |1|127.0.0.01|50000|'), /^200 /);
    assert.match(await c.cmd('EPRT |2|::ffff:127.0.0.1|50000|'), /^200 /);
    assert.match(await c.cmd('EPRT |2|0:0:0:0:0:ffff:7f00:1|50000|'), /^200 /);
    assert.match(await c.cmd('PORT 1277,0,0,1,200,10'), /^501 /);
    const bounces = t.eventsNamed('security').filter((e) => e.event === 'bounce-attempt');
    assert.equal(bounces.length, 4);
    // One line per refusal: the bounce-attempt event, not a 'refused' line as well.
    assert.equal(t.eventsNamed('refused').filter((e) => e.code === 504).length, 0);
    c.close();
  });

  test('EPRT from an IPv6 client with its address written in full (as Java clients do) is its own address', async (ctx) => {
    let v6: TestServer;
    try {
      v6 = await startServer({ host: '::1' });
    } catch {
      ctx.skip('no IPv6 loopback');
      return;
    }
    try {
      const c = await RawClient.loggedIn(v6.port, 'alice', undefined, '::1');
      assert.match(await c.cmd('EPRT |2|0:0:0:0:0:0:0:1|50000|'), /^200 /);
      assert.match(await c.cmd('EPRT |2|0000:0000:0000:0000:0000:0000:0000:0001|50000|'), /^200 /);
      assert.match(await c.cmd('EPRT |2|::2|50000|'), /^504 /);
      assert.equal(v6.eventsNamed('security').filter((e) => e.event === 'bounce-attempt').length, 1);
      c.close();
    } finally {
      await v6.close();
    }
  });

  test('one pending passive listener per session: a new PASV closes the old one', async () => {
    const c = await RawClient.loggedIn(t.port);
    const first = passivePort(await c.cmd('PASV'));
    const before = t.server.context.passive.open;
    let pending = first;
    for (let i = 0; i < 50; i++) pending = passivePort(await c.cmd('PASV'));
    // The range is 20 ports: the pending listener may have drawn the old port again, which would then rightly accept.
    while (pending === first) pending = passivePort(await c.cmd('PASV'));
    assert.equal(t.server.context.passive.open, before);
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect({ port: first, host: '127.0.0.1' });
      s.once('error', () => resolve(true));
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
    });
    assert.ok(refused, 'old passive port is closed');
    c.close();
  });
});

describe('PASV behind NAT: passive.public_host', () => {
  test('an IPv4 public host is announced in the 227; one without an IPv4 address is a 425 and a server-error line, EPSV still works', async () => {
    const nat = await startServer({ config: { passive: { public_host: '203.0.113.7' } } });
    const lost = await startServer({ config: { passive: { public_host: 'no-such-host.invalid' } } });
    try {
      const c = await RawClient.loggedIn(nat.port);
      assert.match(await c.cmd('PASV'), /^227 Entering Passive Mode \(203,0,113,7,\d+,\d+\)/);
      c.close();
      const d = await RawClient.loggedIn(lost.port);
      assert.match(await d.cmd('PASV'), /^425 /);
      assert.match(await d.cmd('EPSV'), /^229 /);
      assert.ok(lost.eventsNamed('server-error').some((e) => /no-such-host\.invalid/.test(e.where)));
      d.close();
    } finally {
      await nat.close();
      await lost.close();
    }
  });
});

describe('an implicit-FTPS client pointed at the plain port', () => {
  test('its ClientHello closes the connection with one unscored tls-on-plain-port line, never a ban', async () => {
    await withServer({ config: { guard: { never_ban: [], ban_threshold: 3 } } }, async (t) => {
      for (let i = 0; i < 5; i++) {
        const s = tlsConnect({ port: t.port, host: '127.0.0.1', rejectUnauthorized: false });
        await new Promise<void>((resolve) => {
          s.once('error', () => resolve());
          s.once('close', () => resolve());
        });
        s.destroy();
      }
      // The client may give up on the server's plain greeting before the server has read its hello.
      const seen = () => t.eventsNamed('security').filter((e) => e.event === 'tls-on-plain-port').length;
      for (let i = 0; i < 100 && seen() < 5; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(seen(), 5);
      const security = t.eventsNamed('security');
      assert.deepEqual(security.filter((e) => e.event === 'ban'), []);
      assert.deepEqual(t.eventsNamed('refused'), []);
      const c = await RawClient.loggedIn(t.port);
      assert.match(await c.cmd('NOOP'), /^200 /);
      c.close();
    });
  });
});
