// ProFTPD from Debian's packages (proftpd-core, mod_tls from proftpd-mod-crypto), unpacked into the cache.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkLibs, debVersion, extractPackages, PASSWORD, SYS_USER } from '../lib/setup.js';
import { HOST, type Ctx, type Driver, type Launch } from './types.js';

export const proftpd: Driver = {
  name: 'proftpd',
  async prepare(ctx: Ctx): Promise<Launch> {
    const { tree, libPath } = extractPackages('proftpd', ['proftpd-core', 'proftpd-mod-crypto']);
    const bin = path.join(tree, 'usr/sbin/proftpd');
    checkLibs(bin, libPath);
    const modDir = path.join(tree, 'usr/lib/proftpd');
    const haveTls = existsSync(path.join(modDir, 'mod_tls.so'));
    if (haveTls) checkLibs(path.join(modDir, 'mod_tls.so'), libPath);
    const r = ctx.runDir;
    const conf = path.join(r, 'proftpd.conf');
    const lines = [
      'ServerName "bench"',
      'ServerType standalone',
      'DefaultServer on',
      `DefaultAddress ${HOST}`,
      'SocketBindTight on',
      `Port ${ctx.port}`,
      'UseIPv6 off',
      'Umask 022',
      'MaxInstances 30000',
      'User nobody',
      'Group nogroup',
      'DefaultRoot ~',
      'AllowOverwrite on',
      `PassivePorts ${ctx.pasvMin} ${ctx.pasvMax}`,
      'UseReverseDNS off',
      '<IfModule mod_ident.c>',
      '  IdentLookups off',
      '</IfModule>',
      'RequireValidShell off',
      'AuthOrder mod_auth_unix.c',
      '<IfModule mod_auth_pam.c>',
      '  AuthPAM off',
      '</IfModule>',
      '<IfModule mod_delay.c>',
      '  DelayEngine off',
      '</IfModule>',
      'WtmpLog off',
      'TransferLog none',
      `SystemLog ${path.join(r, 'system.log')}`,
      `ScoreboardFile ${path.join(r, 'scoreboard')}`,
      `PidFile ${path.join(r, 'proftpd.pid')}`,
      'TimeoutIdle 900',
      `ModulePath ${modDir}`,
    ];
    if (haveTls) {
      lines.push(
        'LoadModule mod_tls.c',
        '<IfModule mod_tls.c>',
        '  TLSEngine on',
        '  TLSRequired off',
        `  TLSRSACertificateFile ${ctx.cert.cert}`,
        `  TLSRSACertificateKeyFile ${ctx.cert.key}`,
        '  TLSOptions NoSessionReuseRequired',
        '  TLSProtocol TLSv1.2 TLSv1.3',
        '  TLSVerifyClient off',
        `  TLSLog ${path.join(r, 'tls.log')}`,
        '</IfModule>',
      );
    }
    writeFileSync(conf, lines.join('\n') + '\n');
    return {
      cmd: bin,
      args: ['-n', '-c', conf],
      env: { ...process.env, LD_LIBRARY_PATH: libPath },
      user: SYS_USER,
      password: PASSWORD,
      tls: haveTls ? true : 'mod_tls.so not found in proftpd-mod-crypto',
      version: `proftpd ${debVersion('proftpd-core')}`,
      notes: ['unix (shadow) login, DefaultRoot ~, DelayEngine off, sendfile on (default)'],
    };
  },
};
