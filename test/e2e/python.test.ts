import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run } from '../helpers/clients.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';

/*
 * Python's ftplib against a real Moat server. Each test runs
 * test/e2e/python/ftp_driver.py with a list of steps; the driver prints, per
 * step, ftplib's result or the server's error reply, and the transcript of
 * what ftplib sent and read. The assertions here are on those replies and on
 * the files on disk.
 */

const DRIVER = fileURLToPath(new URL('./python/ftp_driver.py', import.meta.url));

type Step = Record<string, unknown> & { op: string };

interface StepResult {
  op: string;
  ok: boolean;
  result?: unknown;
  error?: string;
  error_type?: string;
  transcript: string[];
}

interface PyOut {
  welcome?: string;
  login?: string;
  family?: string;
  fatal?: string;
  steps: StepResult[];
}

async function py(
  t: TestServer,
  steps: Step[],
  options: { user?: string; password?: string; login?: boolean; pasv?: boolean; timeout?: number } = {},
): Promise<PyOut> {
  const spec = {
    host: t.host,
    port: t.port,
    user: options.user ?? 'alice',
    password: options.password ?? PASSWORD,
    login: options.login ?? true,
    pasv: options.pasv ?? true,
    timeout: options.timeout ?? 15,
    steps,
  };
  const r = await run('python3', [DRIVER, '-'], { input: JSON.stringify(spec), timeoutMs: 30_000 });
  assert.equal(r.code, 0, `python exited ${r.code}: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as PyOut;
  assert.equal(out.fatal, undefined, `driver failed: ${out.fatal}`);
  return out;
}

/** The reply text of a step (its result when it succeeded, else the error reply). */
function replyOf(s: StepResult): string {
  if (s.ok) return typeof s.result === 'string' ? s.result : JSON.stringify(s.result);
  return s.error ?? '';
}

/** Assert each step's reply starts with the expected code; return the replies. */
function expectCodes(out: PyOut, codes: Array<number | null>): string[] {
  assert.equal(out.steps.length, codes.length);
  return out.steps.map((s, i) => {
    const text = replyOf(s);
    const want = codes[i];
    if (want !== null && want !== undefined) {
      assert.ok(text.startsWith(`${want}`), `step ${i} (${JSON.stringify(s.transcript[0] ?? s.op)}): want ${want}, got ${JSON.stringify(text)}`);
    }
    return text;
  });
}

const cmd = (line: string): Step => ({ op: 'cmd', line });
const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');
const unb64 = (s: unknown) => Buffer.from(String(s), 'base64');

/** Lines of a multi-line reply as ftplib returns it (joined with \n). */
const replyLines = (text: string) => text.split('\n');

/** Parse "type=file;size=3;... name" into facts (keys lower-cased) and the name. */
function parseFacts(line: string): { facts: Record<string, string>; name: string } {
  const trimmed = line.replace(/^ /, '');
  const space = trimmed.indexOf(' ');
  const facts: Record<string, string> = {};
  for (const f of trimmed.slice(0, space).split(';').filter(Boolean)) {
    const [k, v] = f.split('=') as [string, string];
    facts[k.toLowerCase()] = v;
  }
  return { facts, name: trimmed.slice(space + 1) };
}

function mdtm(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** These tests provoke refusals on purpose: offence scoring must not ban the test's own address. */
const NO_BANS = { guard: { ban_threshold: 10_000 } };

const EXPECTED_FEAT = [
  'EPRT',
  'EPSV',
  'HOST',
  'MDTM',
  'MFMT',
  'MLST type*;size*;modify*;perm*;unique*;UNIX.mode*;',
  'REST STREAM',
  'SIZE',
  'TVFS',
  'UTF8',
];

describe('ftplib: commands and replies (IPv4)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ config: NO_BANS });
  });
  after(async () => {
    await t.close();
  });

  test('welcome, login, SYST, NOOP, FEAT lists exactly what is implemented', async () => {
    await writeFile(join(t.root, 'feat.txt'), 'feat');
    await mkdir(join(t.root, 'feat-dir', 'inner'), { recursive: true });
    const out = await py(t, [
      cmd('SYST'),
      cmd('NOOP'),
      cmd('FEAT'),
      // One proof per FEAT line that the feature works.
      cmd('EPRT |1|127.0.0.1|50000|'),
      cmd('EPSV'),
      cmd('MDTM feat.txt'),
      cmd('MFMT 20220101000000 feat.txt'),
      cmd('MLST feat.txt'),
      cmd('REST 2'),
      { op: 'retrbinary', line: 'RETR feat.txt', rest: 2 },
      cmd('SIZE feat.txt'),
      cmd('CWD /feat-dir/inner'),
      { op: 'pwd' },
      cmd('OPTS UTF8 ON'),
    ]);
    assert.match(out.welcome!, /^220 /);
    assert.doesNotMatch(out.welcome!, /moat\s*v?\d|\d+\.\d+\.\d+/i, 'no version in the banner');
    assert.match(out.login!, /^230/);
    const r = expectCodes(out, [215, 200, 211, 200, 229, 213, 213, 250, 350, null, 213, 250, null, 200]);
    assert.equal(r[0], '215 UNIX Type: L8');
    const feat = replyLines(r[2]!);
    assert.match(feat[0]!, /^211-/);
    assert.match(feat.at(-1)!, /^211 /);
    const features = feat.slice(1, -1);
    assert.ok(features.every((l) => /^ \S/.test(l)), 'each feature line starts with one space');
    assert.deepEqual(
      features.map((l) => l.trim()),
      EXPECTED_FEAT,
    );
    // HOST is proved in its own test; the rest here:
    assert.equal(unb64((out.steps[9]!.result as { data: string }).data).toString(), 'at');
    assert.equal(r[10], '213 4');
    assert.equal(out.steps[12]!.result, '/feat-dir/inner');
  });

  test('HELP lists every command, HELP RETR describes it, HELP of an unknown verb fails', async () => {
    const out = await py(t, [cmd('HELP'), cmd('HELP RETR'), cmd('HELP retr'), cmd('HELP NOSUCH')]);
    const r = expectCodes(out, [214, 214, 214, null]);
    const helpLines = replyLines(r[0]!);
    assert.match(helpLines[0]!, /^214-/);
    assert.match(helpLines.at(-1)!, /^214 /);
    const verbs = new Set(helpLines.slice(1, -1).join(' ').split(/\s+/).filter(Boolean));
    for (const v of [
      'USER', 'PASS', 'ACCT', 'QUIT', 'REIN', 'NOOP', 'SYST', 'FEAT', 'OPTS', 'HELP', 'STAT', 'SITE', 'TYPE', 'MODE', 'STRU',
      'PWD', 'XPWD', 'CWD', 'XCWD', 'CDUP', 'XCUP', 'MKD', 'XMKD', 'RMD', 'XRMD', 'DELE', 'RNFR', 'RNTO', 'SIZE', 'MDTM', 'MFMT',
      'LIST', 'NLST', 'MLSD', 'MLST', 'RETR', 'STOR', 'STOU', 'APPE', 'REST', 'ABOR', 'ALLO', 'PASV', 'EPSV', 'PORT', 'EPRT', 'HOST',
    ]) {
      assert.ok(verbs.has(v), `HELP lists ${v}`);
    }
    assert.match(r[1]!, /^214 .*RETR/);
    assert.equal(r[2], r[1]);
    assert.match(r[3]!, /^5\d\d /);
  });

  test('STAT: 211 multi-line server status; STAT <dir> is a 213 listing', async () => {
    await mkdir(join(t.root, 'statdir'));
    await writeFile(join(t.root, 'statdir', 'one.txt'), '12345');
    await writeFile(join(t.root, 'statdir', 'two.txt'), '');
    const out = await py(t, [cmd('STAT'), cmd('STAT statdir'), cmd('STAT no-such-dir')]);
    const r = expectCodes(out, [211, 213, 550]);
    const status = replyLines(r[0]!);
    assert.ok(status.length >= 3, r[0]);
    assert.match(status[0]!, /^211-/);
    assert.match(status.at(-1)!, /^211 /);
    assert.ok(status.some((l) => l.includes('alice')), 'status names the user');
    const listing = replyLines(r[1]!);
    assert.match(listing[0]!, /^213-/);
    assert.match(listing.at(-1)!, /^213 /);
    const entries = listing.slice(1, -1).filter((l) => /^ ?[-dl][rwx-]{9}/.test(l));
    assert.equal(entries.length, 2, r[1]);
    assert.ok(entries.some((l) => / 5 \w{3} .* one\.txt$/.test(l)));
    assert.ok(entries.some((l) => l.endsWith(' two.txt')));
  });

  test('PWD/XPWD, CWD/XCWD, CDUP/XCUP, MKD/XMKD (quoting), RMD/XRMD', async () => {
    const out = await py(t, [
      cmd('PWD'),
      cmd('MKD nav'),
      cmd('XMKD nav/say "hi"'),
      { op: 'mkd', path: 'nav/q"q' },
      cmd('CWD nav'),
      cmd('XPWD'),
      cmd('XCWD say "hi"'),
      { op: 'pwd' },
      cmd('CDUP'),
      cmd('PWD'),
      cmd('XCWD /nav/say "hi"'),
      cmd('XCUP'),
      cmd('XCUP'),
      cmd('PWD'),
      cmd('CDUP'),
      cmd('PWD'),
      cmd('CWD no-such'),
      cmd('MKD nav'),
      cmd('RMD nav/say "hi"'),
      cmd('XRMD /nav/q"q'),
      cmd('RMD nav/missing'),
    ]);
    const r = expectCodes(out, [257, 257, 257, null, 250, 257, 250, null, 250, 257, 250, 250, 250, 257, 250, 257, 550, 550, 250, 250, 550]);
    assert.equal(r[0], '257 "/" is the current directory.');
    assert.match(r[1]!, /^257 "\/nav" /);
    assert.match(r[2]!, /^257 "\/nav\/say ""hi""" /, 'inner quotes doubled');
    assert.equal(out.steps[3]!.result, '/nav/q"q', "ftplib's parse257 undoes the doubling");
    assert.match(r[5]!, /^257 "\/nav" /);
    assert.equal(out.steps[7]!.result, '/nav/say "hi"');
    assert.match(r[9]!, /^257 "\/nav" /);
    assert.match(r[13]!, /^257 "\/" /);
    assert.match(r[15]!, /^257 "\/" /, 'CDUP at the root stays at the root');
    assert.deepEqual(await readdir(join(t.root, 'nav')), []);
  });

  test('DELE, RNFR/RNTO, SIZE, MDTM, MFMT on real files', async () => {
    const body = randomBytes(12_345);
    await writeFile(join(t.root, 'f1.bin'), body);
    await writeFile(join(t.root, 'f2.bin'), 'x');
    const when = new Date('2019-06-07T08:09:10Z');
    await utimes(join(t.root, 'f1.bin'), when, when);
    const out = await py(t, [
      { op: 'size', path: 'f1.bin' },
      cmd('MDTM f1.bin'),
      cmd('MFMT 20011223140506 f1.bin'),
      cmd('MDTM f1.bin'),
      { op: 'rename', from: 'f1.bin', to: 'renamed.bin' },
      cmd('RNFR nothing-here'),
      { op: 'delete', path: 'f2.bin' },
      cmd('DELE f2.bin'),
      cmd('SIZE /'),
    ]);
    const r = expectCodes(out, [null, 213, 213, 213, 250, 550, 250, 550, 550]);
    assert.equal(out.steps[0]!.result, 12_345);
    assert.equal(r[1], `213 ${mdtm(when)}`);
    assert.match(r[2]!, /^213 Modify=20011223140506; f1\.bin/);
    assert.equal(r[3], '213 20011223140506');
    assert.deepEqual((await readdir(t.root)).filter((n) => /^(f1|f2|renamed)/.test(n)), ['renamed.bin']);
    const st = await stat(join(t.root, 'renamed.bin'));
    assert.equal(st.mtime.toISOString(), '2001-12-23T14:05:06.000Z');
    assert.deepEqual(await readFile(join(t.root, 'renamed.bin')), body);
  });

  test('MLST: 250 multi-line with every fact; OPTS MLST narrows the facts', async () => {
    await mkdir(join(t.root, 'mlst'));
    await writeFile(join(t.root, 'mlst', 'file.txt'), 'hello');
    const when = new Date('2020-02-03T04:05:06Z');
    await utimes(join(t.root, 'mlst', 'file.txt'), when, when);
    const fst = await stat(join(t.root, 'mlst', 'file.txt'));
    const out = await py(t, [
      cmd('MLST mlst/file.txt'),
      cmd('MLST mlst'),
      cmd('OPTS MLST type;size;'),
      cmd('MLST mlst/file.txt'),
      cmd('FEAT'),
      cmd('OPTS MLST type;bogus;UNIX.mode;'),
      cmd('MLST mlst/file.txt'),
      cmd('MLST missing.txt'),
    ]);
    const r = expectCodes(out, [250, 250, 200, 250, 211, 200, 250, 550]);
    const lines = replyLines(r[0]!);
    assert.equal(lines.length, 3, r[0]);
    assert.match(lines[0]!, /^250-/);
    assert.match(lines[2]!, /^250 /);
    assert.match(lines[1]!, /^ \S/, 'the fact line starts with one space');
    const { facts, name } = parseFacts(lines[1]!);
    assert.equal(name, '/mlst/file.txt');
    assert.deepEqual(Object.keys(facts).sort(), ['modify', 'perm', 'size', 'type', 'unique', 'unix.mode']);
    assert.equal(facts.type, 'file');
    assert.equal(facts.size, '5');
    assert.equal(facts.modify, '20200203040506');
    assert.equal(facts['unix.mode'], (fst.mode & 0o777).toString(8).padStart(4, '0'));
    assert.match(facts.perm!, /^[radfw]+$/);
    for (const p of 'rwadf') assert.ok(facts.perm!.includes(p), `alice has perm ${p}`);
    assert.ok(facts.unique);
    const dir = parseFacts(replyLines(r[1]!)[1]!);
    assert.equal(dir.facts.type, 'dir');
    assert.equal(dir.name, '/mlst');
    assert.notEqual(dir.facts.unique, facts.unique);

    assert.equal(r[2], '200 MLST OPTS type;size;');
    assert.deepEqual(Object.keys(parseFacts(replyLines(r[3]!)[1]!).facts).sort(), ['size', 'type']);
    const mlstFeat = replyLines(r[4]!).find((l) => l.trim().startsWith('MLST '));
    assert.equal(mlstFeat?.trim(), 'MLST type*;size*;modify;perm;unique;UNIX.mode;');
    assert.equal(r[5], '200 MLST OPTS type;UNIX.mode;');
    assert.deepEqual(Object.keys(parseFacts(replyLines(r[6]!)[1]!).facts).sort(), ['type', 'unix.mode']);
  });

  test('mlsd(), nlst() and retrlines(LIST) show the folder as it is on disk', async () => {
    await mkdir(join(t.root, 'ls', 'sub'), { recursive: true });
    await writeFile(join(t.root, 'ls', 'a.txt'), 'aaa');
    await writeFile(join(t.root, 'ls', 'space name.txt'), 'b');
    await writeFile(join(t.root, 'ls', 'Grüße.txt'), 'üü');
    await writeFile(join(t.root, 'ls', '.hidden'), 'h');
    const out = await py(t, [
      { op: 'mlsd', path: 'ls' },
      { op: 'mlsd', path: 'ls', facts: ['type', 'size'] },
      { op: 'nlst', path: 'ls' },
      { op: 'retrlines', line: 'LIST ls' },
      { op: 'retrlines', line: 'LIST -a ls' },
      { op: 'retrlines', line: 'NLST ls/a.txt' },
      { op: 'mlsd', path: 'ls/a.txt' },
    ]);
    for (const s of out.steps.slice(0, 6)) assert.ok(s.ok, `${s.op}: ${s.error}`);
    const mlsd = out.steps[0]!.result as Array<[string, Record<string, string>]>;
    const byName = new Map(mlsd.map(([n, f]) => [n, f]));
    // MLSD shows hidden names too (RFC 3659 leaves filtering to the client).
    assert.deepEqual([...byName.keys()].sort(), ['.hidden', 'Grüße.txt', 'a.txt', 'space name.txt', 'sub'].sort());
    assert.equal(byName.get('a.txt')!.type, 'file');
    assert.equal(byName.get('a.txt')!.size, '3');
    assert.equal(byName.get('Grüße.txt')!.size, '4');
    assert.equal(byName.get('sub')!.type, 'dir');
    for (const f of byName.values()) {
      assert.deepEqual(Object.keys(f).sort(), f.type === 'dir' ? ['modify', 'perm', 'type', 'unique', 'unix.mode'] : ['modify', 'perm', 'size', 'type', 'unique', 'unix.mode']);
    }
    const narrowed = out.steps[1]!.result as Array<[string, Record<string, string>]>;
    assert.ok(narrowed.every(([, f]) => Object.keys(f).every((k) => k === 'type' || k === 'size')), JSON.stringify(narrowed));

    assert.deepEqual((out.steps[2]!.result as string[]).map((n) => n.replace(/^ls\//, '')).sort(), ['Grüße.txt', 'a.txt', 'space name.txt', 'sub']);
    const list = (out.steps[3]!.result as { lines: string[] }).lines;
    assert.equal(list.length, 4, list.join('\n'));
    assert.ok(list.some((l) => /^-rw.* 3 \w{3} .* a\.txt$/.test(l)));
    assert.ok(list.some((l) => /^d.* sub$/.test(l)));
    assert.ok(list.some((l) => l.endsWith(' space name.txt')));
    assert.ok(list.some((l) => l.endsWith(' Grüße.txt')));
    const listAll = (out.steps[4]!.result as { lines: string[] }).lines;
    assert.ok(listAll.some((l) => l.endsWith(' .hidden')), 'LIST -a shows dot files');
    assert.deepEqual((out.steps[5]!.result as { lines: string[] }).lines.map((n) => n.replace(/^.*\//, '')), ['a.txt']);
    // MLSD names a directory, never a file (RFC 3659 7.2.1: 501).
    assert.equal(out.steps[6]!.ok, false);
    assert.match(out.steps[6]!.error!, /^501/);
  });

  test('UTF-8 names with spaces: mkd, stor, nlst, size, rename, retr, mlsd', async () => {
    const dirName = 'Ördner mit Leerzeichen';
    const name = 'Grüße aus Köln – 日本語.txt';
    const out = await py(t, [
      cmd('OPTS UTF8 ON'),
      { op: 'mkd', path: dirName },
      { op: 'storbinary', line: `STOR ${dirName}/${name}`, data: b64('utf-8 ✓') },
      { op: 'nlst', path: dirName },
      { op: 'size', path: `${dirName}/${name}` },
      { op: 'rename', from: `${dirName}/${name}`, to: `${dirName}/renamed ü.txt` },
      { op: 'retrbinary', line: `RETR ${dirName}/renamed ü.txt` },
      { op: 'mlsd', path: dirName },
    ]);
    for (const s of out.steps) assert.ok(s.ok, `${s.op}: ${s.error}`);
    assert.equal(out.steps[1]!.result, `/${dirName}`);
    assert.deepEqual((out.steps[3]!.result as string[]).map((n) => n.replace(/^.*\//, '')), [name]);
    assert.equal(out.steps[4]!.result, Buffer.byteLength('utf-8 ✓'));
    assert.equal(unb64((out.steps[6]!.result as { data: string }).data).toString(), 'utf-8 ✓');
    assert.deepEqual((out.steps[7]!.result as Array<[string]>).map(([n]) => n), ['renamed ü.txt']);
    assert.deepEqual(await readdir(join(t.root, dirName)), ['renamed ü.txt']);
  });

  test('ALLO, MODE, STRU, TYPE', async () => {
    const out = await py(t, [
      cmd('ALLO 1000'),
      cmd('ALLO 1000 R 100'),
      cmd('ALLO lots'),
      cmd('MODE S'),
      cmd('MODE B'),
      cmd('MODE Q'),
      cmd('STRU F'),
      cmd('STRU R'),
      cmd('STRU Q'),
      cmd('TYPE I'),
      cmd('TYPE A'),
      cmd('TYPE A N'),
      cmd('TYPE L 8'),
      cmd('TYPE E'),
      cmd('TYPE X'),
    ]);
    expectCodes(out, [202, 202, 501, 200, 504, 501, 200, 504, 501, 200, 200, 200, 200, 504, 501]);
  });

  test('ACCT, HOST after login, REIN, QUIT', async () => {
    const out = await py(t, [
      cmd('ACCT billing'),
      cmd('HOST ftp.example.com'),
      cmd('REIN'),
      cmd('PWD'),
      cmd('LIST'),
      { op: 'login', user: 'alice', password: PASSWORD },
      cmd('PWD'),
      { op: 'quit' },
    ]);
    const r = expectCodes(out, [202, 503, 220, 530, 530, 230, 257, 221]);
    assert.equal(r[6], '257 "/" is the current directory.');
  });

  test('HOST before USER (220), then login works; PASS before USER is 503', async () => {
    const out = await py(
      t,
      [
        cmd('PASS nothing'),
        cmd('HOST localhost'),
        cmd('HOST bad host!'),
        { op: 'login', user: 'alice', password: PASSWORD },
        cmd('PWD'),
      ],
      { login: false },
    );
    expectCodes(out, [503, 220, 501, 230, 257]);
  });

  test('before login: PWD, CWD, RETR, LIST, STOR are 530; FEAT, HELP, SYST, NOOP are fine', async () => {
    const out = await py(
      t,
      [cmd('PWD'), cmd('CWD /'), cmd('RETR x'), cmd('LIST'), cmd('STOR x'), cmd('MKD y'), cmd('FEAT'), cmd('HELP'), cmd('SYST'), cmd('NOOP')],
      { login: false },
    );
    expectCodes(out, [530, 530, 530, 530, 530, 530, 211, 214, 215, 200]);
  });

  test('unknown (500), obsolete (502), wrong state (503) and bad arguments (501)', async () => {
    await writeFile(join(t.root, 'args.txt'), 'x');
    const out = await py(t, [
      cmd('FOOB'),
      cmd('SMNT /mnt'),
      cmd('RNTO x'),
      cmd('PORT 1,2,3'),
      cmd('PORT 127,0,0,1,300,1'),
      cmd('EPRT |3|::1|5000|'),
      cmd('EPRT garbage'),
      cmd('REST abc'),
      cmd('REST -1'),
      cmd('MFMT garbage'),
      cmd('MFMT 20201301000000 args.txt'),
      cmd('MFMT 20200101000000'),
      cmd('NOOP extra'),
      cmd('SITE NOSUCH'),
      cmd('SITE CHMOD 999 args.txt'),
      cmd('PORT 127,0,0,2,195,80'),
      cmd('PORT 127,0,0,1,0,21'),
      cmd('EPSV 3'),
    ]);
    const r = expectCodes(out, [500, 502, 503, 501, 501, 522, 501, 501, 501, 501, 501, 501, 501, 500, 501, null, null, 501]);
    // Bounce protection: another host, or a privileged port.
    assert.match(r[15]!, /^5\d\d /);
    assert.match(r[16]!, /^5\d\d /);
  });

  test('EPSV ALL: PASV, PORT and EPRT refused with 503; EPSV still works', async () => {
    await writeFile(join(t.root, 'epsvall.txt'), 'all');
    const out = await py(t, [
      cmd('EPSV ALL'),
      cmd('PASV'),
      cmd('PORT 127,0,0,1,200,10'),
      cmd('EPRT |1|127.0.0.1|50000|'),
      cmd('EPSV'),
      cmd('EPSV 1'),
      cmd('EPSV 2'),
    ]);
    const r = expectCodes(out, [200, 503, 503, 503, 229, 229, 522]);
    // RFC 2428: the protocol numbers are 1 (IPv4) and 2 (IPv6), also in the 522 hint.
    assert.match(r[6]!, /\(1\)/);
  });

  test("ftplib's abort() (ABOR sent as TCP urgent data) stops a download and is answered", async () => {
    // ftplib sends "ABOR\r\n" with MSG_OOB: the final LF is the urgent byte, which
    // a socket without SO_OOBINLINE (every Node socket) never sees in the stream.
    const big = await open(join(t.root, 'abort.bin'), 'w');
    await big.truncate(512 * 1024 * 1024);
    await big.close();
    const out = await py(
      t,
      [
        cmd('TYPE I'),
        { op: 'ftplib_abort', line: 'RETR abort.bin', bytes: 4096 },
        cmd('NOOP'),
      ],
      { timeout: 4 },
    );
    const abort = out.steps[1]!;
    assert.ok(abort.ok, `abort() got no answer: ${abort.error} (${abort.transcript.join(' | ')})`);
    const replies = (abort.result as { replies: string[] }).replies;
    assert.ok(replies.every((x) => /^(426|225|226) /.test(x)), replies.join(' | '));
    assert.equal(replyOf(out.steps[2]!), '200 NOOP ok.');
    const ev = t.eventsNamed('download').at(-1)!;
    assert.equal(ev.result, 'aborted');
  });

  test('SITE HELP and SITE CHMOD change the host file mode', async () => {
    await writeFile(join(t.root, 'mode.txt'), 'm');
    const out = await py(t, [cmd('SITE HELP'), cmd('SITE CHMOD 600 mode.txt'), cmd('SITE CHMOD 640 no-such.txt')]);
    const r = expectCodes(out, [214, 200, 550]);
    assert.ok(r[0]!.includes('CHMOD'));
    assert.equal((await stat(join(t.root, 'mode.txt'))).mode & 0o777, 0o600);
  });
});

for (const host of ['127.0.0.1', '::1']) {
  describe(`ftplib transfers over ${host}`, () => {
    let t: TestServer;
    before(async () => {
      t = await startServer({ host, config: NO_BANS });
    });
    after(async () => {
      await t.close();
    });

    const v6 = host.includes(':');
    for (const pasv of [true, false]) {
      const verb = pasv ? (v6 ? 'EPSV' : 'PASV') : v6 ? 'EPRT' : 'PORT';
      test(`${pasv ? 'passive' : 'active'} (${verb}): storbinary, retrbinary, REST, APPE, STOU, storlines`, async () => {
        const tag = pasv ? 'pasv' : 'actv';
        const body = randomBytes(256 * 1024 + 17);
        await mkdir(join(t.root, tag));
        await writeFile(join(t.root, tag, 'rest-stor.bin'), Buffer.alloc(5000, 0x41));
        await writeFile(join(t.root, tag, 'appe.bin'), 'first part|');
        const out = await py(
          t,
          [
            { op: 'cwd', path: tag },
            { op: 'storbinary', line: 'STOR up.bin', data: b64(body) },
            { op: 'retrbinary', line: 'RETR up.bin' },
            { op: 'retrbinary', line: 'RETR up.bin', rest: 100_000 },
            { op: 'storbinary', line: 'STOR rest-stor.bin', data: b64(body.subarray(5000)), rest: 5000 },
            { op: 'storbinary', line: 'APPE appe.bin', data: b64('second part') },
            { op: 'storbinary', line: 'APPE new-by-appe.bin', data: b64('created') },
            { op: 'storbinary', line: 'STOU', data: b64('unique one') },
            { op: 'storbinary', line: 'STOU base', data: b64('unique two') },
            { op: 'storlines', line: 'STOR lines.txt', data: b64('l1\nl2\n\nl4\n') },
            { op: 'retrlines', line: 'RETR lines.txt' },
            { op: 'retrlines', line: 'LIST' },
          ],
          { pasv },
        );
        assert.equal(out.family, v6 ? 'ipv6' : 'ipv4');
        for (const s of out.steps) assert.ok(s.ok, `${s.op} ${s.transcript[0]}: ${s.error}`);
        const sent = out.steps.flatMap((s) => s.transcript.filter((l) => l.startsWith('> ')).map((l) => l.slice(2)));
        const dataSetups = sent.filter((c) => /^(PASV|EPSV|PORT|EPRT)\b/.test(c));
        assert.equal(dataSetups.length, 11, sent.join(' | '));
        assert.ok(dataSetups.every((c) => c.startsWith(verb)), `all transfers used ${verb}: ${dataSetups.join(' | ')}`);

        assert.match(replyOf(out.steps[1]!), /^226 /);
        assert.deepEqual(await readFile(join(t.root, tag, 'up.bin')), body);
        assert.deepEqual(unb64((out.steps[2]!.result as { data: string }).data), body);
        assert.deepEqual(unb64((out.steps[3]!.result as { data: string }).data), body.subarray(100_000));
        assert.ok(out.steps[3]!.transcript.includes('> REST 100000'));
        assert.ok(out.steps[3]!.transcript.some((l) => l.startsWith('< 350 ')));

        // REST + STOR resumes in place: the first 5000 bytes are the ones already there.
        assert.ok(out.steps[4]!.transcript.includes('> REST 5000'));
        const resumed = await readFile(join(t.root, tag, 'rest-stor.bin'));
        assert.equal(resumed.length, body.length);
        assert.deepEqual(resumed.subarray(0, 5000), Buffer.alloc(5000, 0x41));
        assert.deepEqual(resumed.subarray(5000), body.subarray(5000));

        assert.equal(await readFile(join(t.root, tag, 'appe.bin'), 'utf8'), 'first part|second part');
        assert.equal(await readFile(join(t.root, tag, 'new-by-appe.bin'), 'utf8'), 'created');

        const stouNames: string[] = [];
        for (const [i, content] of [[7, 'unique one'], [8, 'unique two']] as const) {
          const opening = out.steps[i]!.transcript.find((l) => l.startsWith('< 150 '));
          const m = /^< 150 FILE: (\S+)$/.exec(opening ?? '');
          assert.ok(m, `STOU announces the name: ${opening}`);
          if (i === 8) assert.match(m[1]!, /^base\./);
          stouNames.push(m[1]!);
          assert.equal(await readFile(join(t.root, tag, m[1]!), 'utf8'), content);
        }

        assert.ok(out.steps[9]!.transcript.includes('> TYPE A'));
        assert.equal(await readFile(join(t.root, tag, 'lines.txt'), 'latin1'), 'l1\nl2\n\nl4\n');
        assert.deepEqual((out.steps[10]!.result as { lines: string[] }).lines, ['l1', 'l2', '', 'l4']);
        const names = (out.steps[11]!.result as { lines: string[] }).lines.map((l) => l.split(/\s+/).slice(8).join(' '));
        assert.notEqual(stouNames[0], stouNames[1]);
        assert.deepEqual(names.sort(), ['appe.bin', 'lines.txt', 'new-by-appe.bin', 'rest-stor.bin', 'up.bin', ...stouNames].sort());
        assert.deepEqual((await readdir(join(t.root, tag))).sort(), names.sort(), 'no stray temporary files');
      });
    }

    if (v6) {
      test('PASV on an IPv6 control connection is refused; EPSV 1 is refused with 522', async () => {
        const out = await py(t, [cmd('PASV'), cmd('EPSV 1'), cmd('EPSV 2'), cmd('PORT 127,0,0,1,200,10')]);
        const r = expectCodes(out, [null, 522, 229, 522]);
        assert.match(r[0]!, /^[45]\d\d /);
        assert.match(r[1]!, /\(2\)/, 'RFC 2428 names IPv6 as protocol 2');
        // Not a bounce: an IPv6 client has no IPv4 address of its own to give. Nothing is scored.
        assert.match(r[3]!, /\(2\)/, 'PORT (IPv4) from an IPv6 client: the 522 names the protocol to use');
        assert.ok(!t.eventsNamed('security').some((e) => e.event === 'bounce-attempt'));
      });
    }
  });
}

describe('ftplib: anonymous access', () => {
  test('refused by default', async () => {
    const t = await startServer({ config: NO_BANS });
    try {
      const out = await py(t, [{ op: 'login', user: 'anonymous', password: 'guest@example.com' }, cmd('PWD')], { login: false });
      expectCodes(out, [530, 530]);
    } finally {
      await t.close();
    }
  });

  test('when enabled: read-only login into pub; upload, mkdir and delete refused', async () => {
    const t = await startServer({ config: { ...NO_BANS, anonymous: { enabled: true } } });
    try {
      await mkdir(join(t.root, 'pub', 'docs'), { recursive: true });
      await writeFile(join(t.root, 'pub', 'readme.txt'), 'public file\n');
      await writeFile(join(t.root, 'secret.txt'), 'not for anonymous\n');
      const out = await py(
        t,
        [
          { op: 'login', user: 'anonymous', password: 'guest@example.com' },
          cmd('PWD'),
          { op: 'nlst' },
          { op: 'retrbinary', line: 'RETR readme.txt' },
          { op: 'retrbinary', line: 'RETR ../secret.txt' },
          { op: 'storbinary', line: 'STOR up.txt', data: b64('nope') },
          { op: 'storbinary', line: 'APPE readme.txt', data: b64('nope') },
          cmd('MKD newdir'),
          cmd('DELE readme.txt'),
          cmd('RNFR readme.txt'),
          cmd('SITE CHMOD 777 readme.txt'),
        ],
        { login: false },
      );
      const r = expectCodes(out, [230, 257, null, null, 550, 550, 550, 550, 550, 550, 550]);
      assert.match(r[1]!, /^257 "\/" /);
      assert.deepEqual((out.steps[2]!.result as string[]).sort(), ['docs', 'readme.txt']);
      assert.equal(unb64((out.steps[3]!.result as { data: string }).data).toString(), 'public file\n');
      assert.deepEqual((await readdir(join(t.root, 'pub'))).sort(), ['docs', 'readme.txt']);
      assert.equal(await readFile(join(t.root, 'pub', 'readme.txt'), 'utf8'), 'public file\n');
      // `ftp` is the other anonymous name.
      const ftp = await py(t, [cmd('PWD')], { user: 'ftp', password: 'x@y' });
      expectCodes(ftp, [257]);
    } finally {
      await t.close();
    }
  });
});
