import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** A certificate chain and its key, as PEM, with the leaf's SHA-256 fingerprint. */
export interface CertMaterial {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, "AB:CD:...". */
  fingerprint: string;
  /** Certificate subject and expiry, for the log. */
  subject: string;
  validTo: string;
}

export class CertError extends Error {
  override name = 'CertError';
}

/**
 * Read and check a PEM certificate chain and key. Throws CertError with a
 * readable message naming the setting (tls.cert / tls.key) and the file.
 * The key is checked against the certificate here because OpenSSL accepts a
 * key of another type (an EC key for an RSA certificate) into a context, and
 * then every handshake fails.
 */
export async function loadCertMaterial(certFile: string, keyFile: string): Promise<CertMaterial> {
  const certName = `tls.cert ${certFile}`;
  const keyName = `tls.key ${keyFile}`;
  const cert = await readPem(certName, certFile);
  const key = await readPem(keyName, keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new CertError(`${certName}: not a PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    const encrypted = /passphrase|encrypted/i.test(String((error as Error).message)) || key.includes('ENCRYPTED');
    throw new CertError(encrypted ? `${keyName}: the key is encrypted; give an unencrypted key (mode 0600)` : `${keyName}: not a PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new CertError(`${keyName}: the key does not belong to the certificate in ${certFile}`);
  return { cert, key, fingerprint: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo };
}

async function readPem(name: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new CertError(`${name}: cannot read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new CertError('the openssl command is needed to generate a certificate (Node cannot sign X.509 itself); install it (e.g. apt-get install openssl) or give --tls-cert/--tls-key'));
      }
      reject(new CertError(`openssl failed: ${String(stderr).trim().split('\n').slice(-1)[0] || error.message}`));
    });
  });
}

export interface GenerateOptions {
  /** Common name and DNS/IP subject alternative names. */
  commonName?: string;
  altNames?: string[];
  days?: number;
}

/**
 * Generate a self-signed ECDSA P-256 certificate with the `openssl` command
 * (Node 20 can make keys but cannot sign certificates). The key is written
 * with mode 0600; both files are written under temporary names and renamed,
 * so a watcher never sees half a file.
 */
export async function generateSelfSigned(certFile: string, keyFile: string, options: GenerateOptions = {}): Promise<CertMaterial> {
  const cn = options.commonName ?? 'localhost';
  const alt = options.altNames ?? ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
  const days = options.days ?? 825;
  const tmpCert = `${certFile}.tmp-${process.pid}`;
  const tmpKey = `${keyFile}.tmp-${process.pid}`;
  const oldUmask = process.umask(0o077);
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256',
      '-days', String(days), '-subj', `/CN=${cn.replace(/[/\\]/g, '')}`,
      '-addext', `subjectAltName=${alt.join(',')}`,
      '-keyout', tmpKey, '-out', tmpCert,
    ]);
    await chmod(tmpKey, 0o600);
    await rename(tmpKey, keyFile);
    await rename(tmpCert, certFile);
  } catch (error) {
    await rm(tmpCert, { force: true });
    await rm(tmpKey, { force: true });
    throw error;
  } finally {
    process.umask(oldUmask);
  }
  return loadCertMaterial(certFile, keyFile);
}

/**
 * The embedded default's certificate: `<state_dir>/tls/cert.pem` and
 * `key.pem`, generated on first start, reused after.
 */
export async function ensureSelfSigned(stateDir: string): Promise<{ certFile: string; keyFile: string; created: boolean }> {
  const dir = join(stateDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await generateSelfSigned(certFile, keyFile);
  return { certFile, keyFile, created: true };
}
