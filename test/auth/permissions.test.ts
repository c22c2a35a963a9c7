import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPermissions, describePermissions, parsePermissions, PermissionError } from '../../src/auth/permissions.js';

describe('permissions', () => {
  it('accepts the pyftpdlib letters and returns them in canonical order', () => {
    assert.equal(parsePermissions('elradfmwMT'), 'elradfmwMT');
    assert.equal(parsePermissions('rle'), 'elr');
    assert.equal(parsePermissions('TMw'), 'wMT');
    assert.equal(parsePermissions(''), '');
  });

  it('rejects unknown letters and duplicates with a clear message', () => {
    assert.throws(() => parsePermissions('elrx'), (err: Error) => err instanceof PermissionError && /unknown permission letter "x"/.test(err.message) && /elradfmwMT/.test(err.message));
    assert.throws(() => parsePermissions('E'), /unknown permission letter "E"/);
    assert.throws(() => parsePermissions('elre'), /"e" appears twice/);
    assert.match(checkPermissions('el r') ?? '', /unknown permission letter " "/);
    assert.equal(checkPermissions('elr'), null);
  });

  it('describes every letter and marks the granted ones', () => {
    const d = describePermissions('elr');
    assert.equal(d.length, 10);
    assert.deepEqual(d.filter((p) => p.granted).map((p) => p.letter), ['e', 'l', 'r']);
    assert.match(d.find((p) => p.letter === 'w')!.description, /STOR/);
  });
});
