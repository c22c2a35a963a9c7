import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { CertError, generateSelfSigned, loadCertMaterial } from '../tls/certs.js';
import { CliError } from './user.js';

interface GenerateFlags {
  config?: string;
  stateDir?: string;
  cert?: string;
  key?: string;
  cn: string;
  san?: string[];
  days: string;
  force?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Subject alternative names from --san values: IP literals become IP:, the rest DNS:. */
function altNames(cn: string, sans: string[] = []): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', cn, ...sans]);
  return [...names].map((n) => (/^[0-9.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`));
}

/**
 * `moat cert generate`: a self-signed ECDSA P-256 certificate and key (mode
 * 0600), by default where the embedded default looks for them
 * (<state_dir>/tls/cert.pem, key.pem). Uses the openssl command: Node cannot
 * sign X.509 certificates itself.
 */
export function registerCertCommands(program: Command): void {
  const cert = program.command('cert').description('TLS certificates for FTPS');
  cert
    .command('generate')
    .description('generate a self-signed certificate and key (PEM) and print its SHA-256 fingerprint')
    .option('-c, --config <file>', 'configuration file (for state_dir)')
    .option('--state-dir <dir>', 'write to <dir>/tls/cert.pem and key.pem (default: the configured state_dir)')
    .option('--cert <file>', 'certificate file to write (instead of <state-dir>/tls/cert.pem)')
    .option('--key <file>', 'key file to write (instead of <state-dir>/tls/key.pem)')
    .option('--cn <name>', 'common name', 'localhost')
    .option('--san <name>', 'extra subject alternative name (DNS name or IP), repeatable', collect)
    .option('--days <n>', 'validity in days', '825')
    .option('--force', 'overwrite existing files')
    .action(async (flags: GenerateFlags) => {
      const config = await loadConfig(flags.config, flags.stateDir ? { state_dir: flags.stateDir } : {}).catch((error: Error) => {
        throw new CliError(error.message);
      });
      const dir = join(config.state_dir, 'tls');
      const certFile = resolve(flags.cert ?? join(dir, 'cert.pem'));
      const keyFile = resolve(flags.key ?? join(dir, 'key.pem'));
      const days = Number(flags.days);
      if (!Number.isInteger(days) || days < 1 || days > 36_500) throw new CliError('--days: expected a number of days from 1 to 36500');
      if (!flags.force && (existsSync(certFile) || existsSync(keyFile))) {
        const current = await loadCertMaterial(certFile, keyFile).catch(() => undefined);
        throw new CliError(
          `${certFile} or ${keyFile} already exists${current ? ` (fingerprint ${current.fingerprint})` : ''}; use --force to replace it`,
        );
      }
      await mkdir(dirname(certFile), { recursive: true, mode: 0o700 });
      await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
      try {
        const made = await generateSelfSigned(certFile, keyFile, { commonName: flags.cn, altNames: altNames(flags.cn, flags.san), days });
        process.stdout.write(
          [
            `certificate: ${certFile}`,
            `key:         ${keyFile} (mode 0600)`,
            `subject:     ${made.subject}; valid until ${made.validTo}`,
            `SHA-256 fingerprint: ${made.fingerprint}`,
            'A running server picks the new files up by itself (file watch) or on SIGHUP.',
          ].join('\n') + '\n',
        );
      } catch (error) {
        if (error instanceof CertError) throw new CliError(error.message);
        throw error;
      }
    });
}
