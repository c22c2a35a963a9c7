import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DUMMY_HASH, hashPassword, isPasswordHash, verifyDummy, verifyPassword } from '../../src/auth/password.js';

describe('password hashing', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const encoded = await hashPassword('correct horse');
    assert.equal(await verifyPassword('correct horse', encoded), true);
    assert.equal(await verifyPassword('correct hors', encoded), false);
    assert.equal(await verifyPassword('', encoded), false);
  });

  it('uses the self-describing scrypt format with a fresh salt each time', async () => {
    const a = await hashPassword('s3cret-pass');
    const b = await hashPassword('s3cret-pass');
    assert.match(a, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(a, b);
    assert.ok(isPasswordHash(a));
  });

  it('never contains the password, in clear or base64', async () => {
    const password = 'hunter2-hunter2';
    const encoded = await hashPassword(password);
    assert.ok(!encoded.includes(password));
    assert.ok(!encoded.includes(Buffer.from(password).toString('base64').replace(/=+$/, '')));
  });

  it('treats equal Unicode spellings alike (NFC)', async () => {
    const encoded = await hashPassword('caf\u00e9-caf\u00e9');
    assert.equal(await verifyPassword('cafe\u0301-cafe\u0301', encoded), true);
  });

  it('refuses malformed or absurd hashes instead of running them', async () => {
    for (const bad of ['', 'plain', 'scrypt$16384$8$1$$', 'scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=']) {
      assert.equal(isPasswordHash(bad), false, bad);
      assert.equal(await verifyPassword('x', bad), false);
    }
  });

  it('the dummy hash is well-formed and matches nothing', async () => {
    assert.ok(isPasswordHash(DUMMY_HASH));
    assert.equal(await verifyDummy(''), false);
    let calls = 0;
    await verifyDummy('pw', async (_pw, encoded) => {
      calls++;
      assert.equal(encoded, DUMMY_HASH);
      return true;
    });
    assert.equal(calls, 1);
  });
});
