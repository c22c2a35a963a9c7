import assert from 'node:assert/strict';
import { open, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { passivePort, RawClient, run } from '../helpers/clients.js';
import { PASSWORD, startServer, type TestServer } from '../helpers/server.js';

/*
 * Files past 4 GiB, without moving gigabytes: a 5 GiB sparse file with a
 * marker at 4.5 GiB. SIZE, LIST, MLST and STAT must report the full size;
 * REST past 4 GiB must be accepted and RETR must start exactly there; a
 * resumed upload (REST+STOR, APPE) must write at offsets past 4 GiB. Every
 * download is cut short after a few KiB with ABOR.
 */

const GiB = 1024 ** 3;
const SIZE = 5 * GiB; // 5368709120
const MARK_AT = 4.5 * GiB; // 4831838208
const MARKER = Buffer.from('MOAT-MARKER@4.5GiB:' + 'x'.repeat(45) + ':END');
const DRIVER = fileURLToPath(new URL('./python/ftp_driver.py', import.meta.url));

async function makeSparse(path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.write(MARKER, 0, MARKER.length, MARK_AT);
    await fh.truncate(SIZE);
  } finally {
    await fh.close();
  }
}

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Open the data connection of an EPSV reply; collect what arrives until `want` bytes or close. */
function dataSocket(port: number, host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function readSome(socket: Socket, want: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => finish(new Error(`only ${got} of ${want} bytes within ${timeoutMs} ms`)), timeoutMs);
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= want) finish();
    };
    const onEnd = () => finish();
    function finish(error?: Error) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    }
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

/** Collect replies until one matches `last` (or `count` replies arrived). */
async function repliesUntil(c: RawClient, last: RegExp, max = 3): Promise<string[]> {
  const out: string[] = [];
  while (out.length < max) {
    const r = await c.reply();
    if (r === '') break;
    out.push(r);
    if (last.test(r)) break;
  }
  return out;
}

describe('files past 4 GiB', () => {
  let t: TestServer;
  let client: RawClient;
  const sockets: Socket[] = [];
  before(async () => {
    t = await startServer();
    await makeSparse(join(t.root, 'big.bin'));
    client = await RawClient.connect(t.port, t.host);
    assert.match(await client.reply(), /^220 /);
    await client.login();
    assert.match(await client.cmd('TYPE I'), /^200 /);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    client.close();
    await t.close();
  });

  test('the sparse file is what the test thinks it is', async () => {
    const st = await stat(join(t.root, 'big.bin'));
    assert.equal(st.size, SIZE);
    assert.deepEqual(await readAt(join(t.root, 'big.bin'), MARK_AT, MARKER.length), MARKER);
  });

  test('SIZE, MLST, LIST (STAT) report 5368709120', async () => {
    assert.equal(await client.cmd('SIZE big.bin'), '213 5368709120');
    const mlst = await client.cmd('MLST big.bin');
    assert.match(mlst, /^250-/);
    assert.match(mlst, /[ ;]size=5368709120;/);
    const statReply = await client.cmd('STAT big.bin');
    assert.match(statReply, /^213-/);
    assert.match(statReply, /\s5368709120 \w{3} .*big\.bin/);
  });

  test('REST 4831838208 is accepted with 350; RETR starts exactly at the marker; ABOR ends it early', async () => {
    assert.match(await client.cmd(`REST ${MARK_AT}`), /^350 /);
    const port = passivePort(await client.cmd('EPSV'));
    const data = await dataSocket(port, t.host);
    sockets.push(data);
    client.write('RETR big.bin\r\n');
    const opening = await client.reply();
    assert.match(opening, /^150 /);
    assert.match(opening, new RegExp(`\\(${SIZE - MARK_AT} bytes\\)`), 'the 150 names the bytes left');
    const head = await readSome(data, 8192);
    assert.ok(head.length >= 8192);
    assert.deepEqual(head.subarray(0, MARKER.length), MARKER);
    assert.ok(head.subarray(MARKER.length, 8192).every((b) => b === 0), 'zeros after the marker');

    client.write('ABOR\r\n');
    const replies = await repliesUntil(client, /^22[56] /);
    data.destroy();
    // 426 (transfer aborted) then 226 (ABOR ok), per RFC 959.
    assert.match(replies[0]!, /^426 /, replies.join(' | '));
    assert.match(replies.at(-1)!, /^226 /, replies.join(' | '));
    assert.match(await client.cmd('NOOP'), /^200 /, 'the session goes on');

    const ev = t.eventsNamed('download').at(-1)!;
    assert.equal(ev.result, 'aborted');
    assert.ok(ev.bytes < 256 * 1024 * 1024, `only a little was read from disk, not ${ev.bytes} bytes`);
  });

  test('REST to the exact end sends nothing (226); REST past the end is refused', async () => {
    assert.match(await client.cmd(`REST ${SIZE}`), /^350 /);
    const port = passivePort(await client.cmd('EPSV'));
    const data = await dataSocket(port, t.host);
    sockets.push(data);
    const got = readSome(data, 1);
    client.write('RETR big.bin\r\n');
    const replies = await repliesUntil(client, /^2\d\d |^[45]\d\d /, 2);
    assert.match(replies[0]!, /^150 /);
    assert.match(replies.at(-1)!, /^226 /, replies.join(' | '));
    assert.equal((await got).length, 0);

    assert.match(await client.cmd(`REST ${SIZE + 1}`), /^350 /);
    const r = await client.cmd('RETR big.bin');
    assert.match(r, /^5\d\d /, 'a restart offset past the end fails before any data');
  });

  test('REST with offsets past 4 GiB and up to 2^53-1 parses; beyond that is 501', async () => {
    assert.equal(await client.cmd('REST 4294967296').then((r) => r.slice(0, 4)), '350 ');
    assert.equal(await client.cmd('REST 9007199254740991').then((r) => r.slice(0, 4)), '350 ');
    assert.match(await client.cmd('REST 18446744073709551616'), /^501 /);
    assert.match(await client.cmd('REST 0'), /^350 /);
  });

  test('resumed uploads write at offsets past 4 GiB: REST+STOR and APPE', async () => {
    const path = join(t.root, 'big-up.bin');
    await makeSparse(path);
    // REST at the very end of the 5 GiB file + STOR: the bytes land at 5 GiB.
    assert.match(await client.cmd(`REST ${SIZE}`), /^350 /);
    let port = passivePort(await client.cmd('EPSV'));
    let data = await dataSocket(port, t.host);
    sockets.push(data);
    client.write('STOR big-up.bin\r\n');
    assert.match(await client.reply(), /^150 /);
    data.end('TAIL-AT-5GiB');
    assert.match(await client.reply(), /^226 /);
    assert.equal((await stat(path)).size, SIZE + 12);
    assert.equal((await readAt(path, SIZE, 12)).toString(), 'TAIL-AT-5GiB');
    assert.deepEqual(await readAt(path, MARK_AT, MARKER.length), MARKER, 'the first part is kept');

    port = passivePort(await client.cmd('EPSV'));
    data = await dataSocket(port, t.host);
    sockets.push(data);
    client.write('APPE big-up.bin\r\n');
    assert.match(await client.reply(), /^150 /);
    data.end('+APPENDED');
    assert.match(await client.reply(), /^226 /);
    assert.equal(await client.cmd('SIZE big-up.bin'), `213 ${SIZE + 21}`);
    assert.equal((await readAt(path, SIZE, 21)).toString(), 'TAIL-AT-5GiB+APPENDED');
  });

  test('ftplib: size() and a REST download from 4.5 GiB cut short with ABOR', async () => {
    const spec = {
      host: t.host,
      port: t.port,
      user: 'alice',
      password: PASSWORD,
      steps: [
        { op: 'size', path: 'big.bin' },
        { op: 'partial_retr', line: 'RETR big.bin', rest: MARK_AT, bytes: 4096 },
        { op: 'cmd', line: 'NOOP' },
      ],
    };
    const r = await run('python3', [DRIVER, '-'], { input: JSON.stringify(spec), timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { fatal?: string; steps: Array<{ ok: boolean; result: any; error?: string; transcript: string[] }> };
    assert.equal(out.fatal, undefined);
    for (const s of out.steps) assert.ok(s.ok, s.error);
    assert.equal(out.steps[0]!.result, SIZE);
    const part = out.steps[1]!;
    assert.ok(part.transcript.includes(`> REST ${MARK_AT}`));
    const got = Buffer.from(part.result.data, 'base64');
    assert.equal(got.length, 4096);
    assert.deepEqual(got.subarray(0, MARKER.length), MARKER);
    const replies = part.result.replies as string[];
    assert.ok(replies.length >= 1 && replies.length <= 2, replies.join(' | '));
    assert.ok(replies.every((x) => /^(426|225|226) /.test(x)), replies.join(' | '));
    assert.match(out.steps[2]!.result, /^200 /);
  });
});
