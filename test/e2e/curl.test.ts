import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ftpUrl, run, type RunResult } from '../helpers/clients.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';

/*
 * curl against a real Moat server: every data-connection mode, IPv4 and IPv6,
 * upload/download/list, resume both ways, quote commands, ASCII mode, and the
 * refusals (bad password, read-only user). Assertions are on files on disk,
 * curl's exit codes, and the commands curl actually sent (-v transcript).
 */

interface CurlOptions {
  user?: string;
  password?: string;
  cwd?: string;
}

function curl(args: string[], options: CurlOptions = {}): Promise<RunResult> {
  const user = options.user ?? 'alice';
  const password = options.password ?? PASSWORD;
  return run('curl', ['-sS', '-v', '--max-time', '20', '--user', `${user}:${password}`, ...args], {
    cwd: options.cwd,
    timeoutMs: 25_000,
  });
}

/** Commands curl sent, from its -v transcript ("> VERB args"). */
function sent(r: RunResult): string[] {
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('> '))
    .map((l) => l.slice(2).trim());
}

/** Replies curl received, from its -v transcript ("< 226 ..."). */
function received(r: RunResult): string[] {
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('< '))
    .map((l) => l.slice(2).trim());
}

/**
 * Parse a `curl --trace FILE` dump into its blocks: what curl sent on the
 * control connection ("Send header") and the raw bytes it sent and received
 * on the data connection ("Send data", "Recv data"): curl converts line ends
 * itself in ASCII mode, so only the trace shows what crossed the wire.
 */
function parseTrace(text: string): { sentHeaders: string; sentData: Buffer; recvData: Buffer } {
  const sentParts: Buffer[] = [];
  const sentData: Buffer[] = [];
  const recvParts: Buffer[] = [];
  let current: Buffer[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('=> Send header')) current = sentParts;
    else if (line.startsWith('<= Recv data')) current = recvParts;
    else if (line.startsWith('=> Send data')) current = sentData;
    else if (/^(=>|<=|==) /.test(line)) current = undefined;
    else if (current && /^[0-9a-f]{4}: /.test(line)) {
      current.push(Buffer.from((line.slice(6, 6 + 48).match(/[0-9a-f]{2}/g) ?? []).join(''), 'hex'));
    }
  }
  return {
    sentHeaders: Buffer.concat(sentParts).toString('latin1'),
    sentData: Buffer.concat(sentData),
    recvData: Buffer.concat(recvParts),
  };
}

/** Split curl's listing output into lines (curl itself turns the CRLFs of an ASCII listing into LF). */
function lines(out: string): string[] {
  return out.split(/\r?\n/).filter(Boolean);
}

function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what}: curl exit ${r.code}\n${r.stderr}`);
}

const MODES = [
  { name: 'EPSV', args: [] as string[], verb: 'EPSV', ipv4Only: false },
  { name: 'PASV', args: ['--disable-epsv'], verb: 'PASV', ipv4Only: true },
  { name: 'PORT', args: ['--ftp-port', '-', '--disable-eprt'], verb: 'PORT', ipv4Only: true },
  { name: 'EPRT', args: ['--ftp-port', '-'], verb: 'EPRT', ipv4Only: false },
];

for (const host of ['127.0.0.1', '::1']) {
  describe(`curl over ${host}`, () => {
    let t: TestServer;
    let local: string;
    before(async () => {
      // Wrong passwords and refused uploads score offences; the test's own address must not get banned.
      t = await startServer({ host, config: { guard: { ban_threshold: 10_000 } } });
      local = await mkdtemp(join(tmpdir(), 'moat-curl-'));
    });
    after(async () => {
      await t.close();
      await rm(local, { recursive: true, force: true });
    });

    for (const mode of MODES) {
      if (mode.ipv4Only && host.includes(':')) continue;
      test(`${mode.name}: upload, list, download`, async () => {
        const body = randomBytes(300_000);
        const src = join(local, `${mode.name}.src`);
        await writeFile(src, body);
        const name = `${mode.name}-file.bin`;

        const up = await curl([...mode.args, '-T', src, ftpUrl(t, `/${name}`)]);
        ok(up, 'upload');
        assert.ok(sent(up).some((c) => c.startsWith(mode.verb)), `upload used ${mode.verb}: ${sent(up).join(' | ')}`);
        assert.ok(sent(up).includes(`STOR ${name}`), 'STOR sent');
        assert.deepEqual(await readFile(join(t.root, name)), body);

        const list = await curl([...mode.args, ftpUrl(t, '/')]);
        ok(list, 'list');
        assert.ok(sent(list).some((c) => c.startsWith(mode.verb)), `list used ${mode.verb}`);
        const line = lines(list.stdout).find((l) => l.endsWith(` ${name}`));
        assert.ok(line, `listed: ${list.stdout}`);
        assert.match(line, /^-rw/);
        assert.match(line, new RegExp(`\\s${body.length}\\s`), 'size in the ls line');

        const dst = join(local, `${mode.name}.dst`);
        const down = await curl([...mode.args, '-o', dst, ftpUrl(t, `/${name}`)]);
        ok(down, 'download');
        assert.ok(sent(down).some((c) => c.startsWith(mode.verb)), `download used ${mode.verb}`);
        assert.ok(sent(down).includes(`RETR ${name}`), 'RETR sent');
        assert.deepEqual(await readFile(dst), body);
      });
    }

    if (host.includes(':')) {
      test('--disable-eprt on IPv6: curl still uses EPRT (PORT cannot name an IPv6 address)', async () => {
        const src = join(local, 'v6port.src');
        await writeFile(src, 'v6 active\n');
        const r = await curl(['--ftp-port', '-', '--disable-eprt', '-T', src, ftpUrl(t, '/v6port.txt')]);
        ok(r, 'upload');
        assert.ok(sent(r).some((c) => c.startsWith('EPRT |2|::1|')), sent(r).join(' | '));
        assert.equal(await readFile(join(t.root, 'v6port.txt'), 'utf8'), 'v6 active\n');
      });

      test('--disable-epsv on IPv6: curl still uses EPSV (PASV cannot name an IPv6 address)', async () => {
        await writeFile(join(t.root, 'v6.txt'), 'six\n');
        const r = await curl(['--disable-epsv', ftpUrl(t, '/v6.txt')]);
        ok(r, 'download');
        assert.ok(sent(r).includes('EPSV'), sent(r).join(' | '));
        assert.equal(r.stdout, 'six\n');
      });
    }

    test('list a folder; --list-only sends NLST and gets names only', async () => {
      await mkdir(join(t.root, 'dir', 'sub'), { recursive: true });
      await writeFile(join(t.root, 'dir', 'b.txt'), 'bb');
      await writeFile(join(t.root, 'dir', 'a file.txt'), 'a');
      const list = await curl([ftpUrl(t, '/dir/')]);
      ok(list, 'list');
      assert.ok(sent(list).includes('CWD dir'), sent(list).join(' | '));
      assert.ok(sent(list).some((c) => c === 'LIST'), sent(list).join(' | '));
      const rows = lines(list.stdout);
      assert.equal(rows.length, 3, list.stdout);
      assert.match(rows.find((l) => l.endsWith(' sub'))!, /^d[rwx-]{9} /);
      assert.match(rows.find((l) => l.endsWith(' b.txt'))!, /^-[rwx-]{9} .* 2 \w{3} [ \d]\d /);
      assert.ok(rows.some((l) => l.endsWith(' a file.txt')));

      const names = await curl(['--list-only', ftpUrl(t, '/dir/')]);
      ok(names, 'nlst');
      assert.ok(sent(names).includes('NLST'), sent(names).join(' | '));
      assert.deepEqual(lines(names.stdout).sort(), ['a file.txt', 'b.txt', 'sub']);
    });

    test('--ftp-create-dirs makes the missing folders; without it the upload fails', async () => {
      const src = join(local, 'deep.src');
      await writeFile(src, 'deep\n');
      const refused = await curl(['-T', src, ftpUrl(t, '/x1/y1/deep.txt')]);
      assert.notEqual(refused.code, 0, 'no folders, no upload');
      await assert.rejects(stat(join(t.root, 'x1')));

      const r = await curl(['--ftp-create-dirs', '-T', src, ftpUrl(t, '/x1/y1/deep.txt')]);
      ok(r, 'upload with create-dirs');
      assert.ok(sent(r).includes('MKD x1'), sent(r).join(' | '));
      assert.equal(await readFile(join(t.root, 'x1', 'y1', 'deep.txt'), 'utf8'), 'deep\n');
    });

    test('resume a download: -C - on a partial local file sends REST', async () => {
      const body = randomBytes(1_000_000);
      await writeFile(join(t.root, 'resume-down.bin'), body);
      const dst = join(local, 'resume-down.bin');
      await writeFile(dst, body.subarray(0, 123_457));
      const r = await curl(['-C', '-', '-o', dst, ftpUrl(t, '/resume-down.bin')]);
      ok(r, 'resume download');
      assert.ok(sent(r).includes('REST 123457'), sent(r).join(' | '));
      assert.ok(received(r).some((l) => l.startsWith('350')), 'REST accepted');
      assert.deepEqual(await readFile(dst), body);
      // Only the missing part travelled.
      const ev = t.eventsNamed('download').at(-1)!;
      assert.equal(ev.bytes, body.length - 123_457);
      assert.equal(ev.result, 'ok');
    });

    test('resume an upload: -C - -T after a partial remote file (SIZE then APPE)', async () => {
      const body = randomBytes(700_001);
      const src = join(local, 'resume-up.bin');
      await writeFile(src, body);
      await writeFile(join(t.root, 'resume-up.bin'), body.subarray(0, 250_000));
      const r = await curl(['-C', '-', '-T', src, ftpUrl(t, '/resume-up.bin')]);
      ok(r, 'resume upload');
      assert.ok(sent(r).includes('SIZE resume-up.bin'), sent(r).join(' | '));
      assert.ok(received(r).includes('213 250000'), received(r).join(' | '));
      assert.ok(sent(r).includes('APPE resume-up.bin'), sent(r).join(' | '));
      assert.deepEqual(await readFile(join(t.root, 'resume-up.bin')), body);
      const ev = t.eventsNamed('upload').at(-1)!;
      assert.equal(ev.command, 'APPE');
      assert.equal(ev.bytes, body.length - 250_000);
    });

    test('-Q quote commands: MKD, RNFR/RNTO, DELE, SITE CHMOD, MFMT, RMD', async () => {
      await mkdir(join(t.root, 'q'));
      await writeFile(join(t.root, 'q', 'old.txt'), 'old');
      await writeFile(join(t.root, 'q', 'gone.txt'), 'gone');
      await mkdir(join(t.root, 'q', 'empty'));
      const r = await curl([
        '-Q', 'MKD q/made',
        '-Q', 'RNFR q/old.txt',
        '-Q', 'RNTO q/new.txt',
        '-Q', 'DELE q/gone.txt',
        '-Q', 'SITE CHMOD 600 q/new.txt',
        '-Q', 'MFMT 20200102030405 q/new.txt',
        '-Q', 'RMD q/empty',
        '--list-only',
        ftpUrl(t, '/q/'),
      ]);
      ok(r, 'quote');
      assert.deepEqual((await readdir(join(t.root, 'q'))).sort(), ['made', 'new.txt']);
      assert.equal(await readFile(join(t.root, 'q', 'new.txt'), 'utf8'), 'old');
      const st = await stat(join(t.root, 'q', 'new.txt'));
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.mtime.toISOString(), '2020-01-02T03:04:05.000Z');
      assert.ok((await stat(join(t.root, 'q', 'made'))).isDirectory());
      // The listing that followed sees the result.
      assert.deepEqual(lines(r.stdout).sort(), ['made', 'new.txt']);
      const replies = received(r);
      assert.ok(replies.some((l) => l.startsWith('257 "/q/made"')), replies.join(' | '));
      assert.ok(replies.some((l) => l.startsWith('213 Modify=20200102030405')), replies.join(' | '));
    });

    test('a failing quote command makes curl fail (exit 21) with the server code', async () => {
      const r = await curl(['-Q', 'DELE no-such-file', '--list-only', ftpUrl(t, '/')]);
      assert.equal(r.code, 21, r.stderr);
      assert.ok(received(r).some((l) => l.startsWith('550')), received(r).join(' | '));
    });

    test('TYPE A: download turns LF into CRLF; upload turns CRLF into LF on disk', async () => {
      await writeFile(join(t.root, 'text.txt'), 'one\ntwo\n\nthree\n');
      const dst = join(local, 'text.dl');
      const trace = join(local, 'ascii.trace');
      // curl converts CRLF back to LF in ASCII mode, so check the bytes on the wire in its trace.
      const down = await curl(['--use-ascii', '--trace', trace, '-o', dst, ftpUrl(t, '/text.txt')]);
      ok(down, 'ascii download');
      const wire = parseTrace(await readFile(trace, 'utf8'));
      assert.match(wire.sentHeaders, /\r\nTYPE A\r\n/);
      assert.equal(wire.recvData.toString('latin1'), 'one\r\ntwo\r\n\r\nthree\r\n');
      assert.equal(await readFile(dst, 'latin1'), 'one\ntwo\n\nthree\n');

      // curl sends a local LF file as CRLF in ASCII mode; the server stores LF again.
      const src = join(local, 'text.up');
      await writeFile(src, 'alpha\nbeta\n\ngamma\n');
      const up = await curl(['--use-ascii', '--trace', trace, '-T', src, ftpUrl(t, '/text-up.txt')]);
      ok(up, 'ascii upload');
      const upWire = parseTrace(await readFile(trace, 'utf8'));
      assert.match(upWire.sentHeaders, /\r\nTYPE A\r\n/);
      assert.equal(upWire.sentData.toString('latin1'), 'alpha\r\nbeta\r\n\r\ngamma\r\n');
      assert.equal(await readFile(join(t.root, 'text-up.txt'), 'latin1'), 'alpha\nbeta\n\ngamma\n');
      // A lone CR is data, not a line end: it survives.
      await writeFile(src, 'cr\ronly\n');
      ok(await curl(['--use-ascii', '-T', src, ftpUrl(t, '/text-cr.txt')]), 'ascii upload with CR');
      assert.equal(await readFile(join(t.root, 'text-cr.txt'), 'latin1'), 'cr\ronly\n');

      // Binary leaves the bytes alone, both ways.
      const bin = await curl(['--trace', trace, '-o', dst, ftpUrl(t, '/text.txt')]);
      ok(bin, 'binary download');
      const binWire = parseTrace(await readFile(trace, 'utf8'));
      assert.match(binWire.sentHeaders, /\r\nTYPE I\r\n/);
      assert.equal(binWire.recvData.toString('latin1'), 'one\ntwo\n\nthree\n');
      const binUp = await curl(['-T', src, ftpUrl(t, '/text-bin.txt')]);
      ok(binUp, 'binary upload');
      assert.equal(await readFile(join(t.root, 'text-bin.txt'), 'latin1'), 'cr\ronly\n');
      await writeFile(src, 'x\r\ny\n');
      ok(await curl(['-T', src, ftpUrl(t, '/text-bin.txt')]), 'binary upload with CRLF');
      assert.equal(await readFile(join(t.root, 'text-bin.txt'), 'latin1'), 'x\r\ny\n');
    });

    test('a wrong password fails with curl exit 67 and 530', async () => {
      const r = await curl([ftpUrl(t, '/')], { password: 'wrong password' });
      assert.equal(r.code, 67, r.stderr);
      assert.ok(received(r).some((l) => l.startsWith('530')), received(r).join(' | '));
      const unknown = await curl([ftpUrl(t, '/')], { user: 'nobody-here' });
      assert.equal(unknown.code, 67, unknown.stderr);
    });

    test('bob (read-only) can download but not upload: 550/553 and nothing written', async () => {
      await mkdir(join(t.root, 'bob'), { recursive: true });
      await writeFile(join(t.root, 'bob', 'readme.txt'), 'for bob\n');
      const down = await curl([ftpUrl(t, '/readme.txt')], { user: 'bob' });
      ok(down, 'bob download');
      assert.equal(down.stdout, 'for bob\n');

      const src = join(local, 'bob.src');
      await writeFile(src, 'not allowed\n');
      const before = (await readdir(join(t.root, 'bob'))).sort();
      const up = await curl(['-T', src, ftpUrl(t, '/upload.txt')], { user: 'bob' });
      assert.notEqual(up.code, 0, 'upload must fail');
      assert.ok(received(up).some((l) => /^55[03]/.test(l)), received(up).join(' | '));
      assert.deepEqual((await readdir(join(t.root, 'bob'))).sort(), before);
      const del = await curl(['-Q', 'DELE readme.txt', '--list-only', ftpUrl(t, '/')], { user: 'bob' });
      assert.equal(del.code, 21);
      assert.equal(await readFile(join(t.root, 'bob', 'readme.txt'), 'utf8'), 'for bob\n');
    });
  });
}
