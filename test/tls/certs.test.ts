import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CertError, loadCertMaterial } from '../../src/tls/certs.js';
import { makeCert } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'moat-certs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

describe('loadCertMaterial: a pair that cannot serve is refused with the setting named', () => {
  const ec = makeCert(join(dir));
  const rsaCert = join(dir, 'rsa.pem');
  const rsaKey = join(dir, 'rsa.key');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=rsa', '-keyout', rsaKey, '-out', rsaCert]);
  const encrypted = join(dir, 'enc.key');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes256', '-pass', 'pass:secret', '-out', encrypted]);

  const refused = async (cert: string, key: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(loadCertMaterial(cert, key), (error: unknown) => {
      assert.ok(error instanceof CertError, String(error));
      assert.match(error.message, pattern);
      return true;
    });
  };

  test('a matching pair loads (RSA and EC)', async () => {
    assert.match((await loadCertMaterial(rsaCert, rsaKey)).fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.match((await loadCertMaterial(ec.certFile, ec.keyFile)).subject, /CN=localhost/);
  });

  test('a key of another type (EC key, RSA certificate): OpenSSL would take it and fail every handshake', async () => {
    await refused(rsaCert, ec.keyFile, /^tls\.key .*key\.pem: the key does not belong to the certificate in .*rsa\.pem$/);
  });

  test('a key of the same type from another pair', async () => {
    await refused(ec.certFile, rsaKey, /^tls\.key .*rsa\.key: the key does not belong/);
  });

  test('an encrypted key, a certificate given as the key, a key given as the certificate, missing files', async () => {
    await refused(ec.certFile, encrypted, /^tls\.key .*enc\.key: the key is encrypted/);
    await refused(ec.certFile, ec.certFile, /^tls\.key .*cert\.pem: not a PEM private key$/);
    await refused(ec.keyFile, ec.keyFile, /^tls\.cert .*key\.pem: not a PEM certificate$/);
    await refused(join(dir, 'none.pem'), ec.keyFile, /^tls\.cert .*none\.pem: cannot read \(ENOENT\)$/);
    await refused(ec.certFile, join(dir, 'none.key'), /^tls\.key .*none\.key: cannot read \(ENOENT\)$/);
  });
});
