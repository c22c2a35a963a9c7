// vsftpd from Debian's package, unpacked into the cache and run from there (standalone, foreground).
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { checkLibs, debVersion, extractPackages, PASSWORD, SYS_USER } from '../lib/setup.js';
import { HOST, type Ctx, type Driver, type Launch } from './types.js';

export const vsftpd: Driver = {
  name: 'vsftpd',
  async prepare(ctx: Ctx): Promise<Launch> {
    const { tree, libPath } = extractPackages('vsftpd', ['vsftpd']);
    const bin = path.join(tree, 'usr/sbin/vsftpd');
    checkLibs(bin, libPath);
    const empty = path.join(ctx.runDir, 'empty'); // secure_chroot_dir: root-owned, not writable
    mkdirSync(empty, { recursive: true });
    chmodSync(empty, 0o755);
    const conf = path.join(ctx.runDir, 'vsftpd.conf');
    writeFileSync(
      conf,
      [
        'listen=YES',
        'listen_ipv6=NO',
        `listen_address=${HOST}`,
        `listen_port=${ctx.port}`,
        'background=NO',
        'anonymous_enable=NO',
        'local_enable=YES',
        'write_enable=YES',
        'local_umask=022',
        'chroot_local_user=YES',
        'allow_writeable_chroot=YES',
        `secure_chroot_dir=${empty}`,
        'pasv_enable=YES',
        `pasv_min_port=${ctx.pasvMin}`,
        `pasv_max_port=${ctx.pasvMax}`,
        'max_clients=0',
        'max_per_ip=0',
        'seccomp_sandbox=NO',
        'xferlog_enable=NO',
        'syslog_enable=NO',
        `vsftpd_log_file=${path.join(ctx.runDir, 'vsftpd.log')}`,
        'idle_session_timeout=900',
        'data_connection_timeout=300',
        'ssl_enable=YES',
        `rsa_cert_file=${ctx.cert.cert}`,
        `rsa_private_key_file=${ctx.cert.key}`,
        'allow_anon_ssl=NO',
        'force_local_data_ssl=NO',
        'force_local_logins_ssl=NO',
        'require_ssl_reuse=NO',
        'ssl_ciphers=HIGH',
        '',
      ].join('\n'),
    );
    return {
      cmd: bin,
      args: [conf],
      env: { ...process.env, LD_LIBRARY_PATH: libPath },
      user: SYS_USER,
      password: PASSWORD,
      tls: true,
      version: `vsftpd ${debVersion('vsftpd')}`,
      notes: ['PAM login of a local user, chroot, seccomp sandbox off'],
    };
  },
};
