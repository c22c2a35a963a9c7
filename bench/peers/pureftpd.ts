// pure-ftpd from Debian's package, unpacked into the cache; configured entirely by flags.
import path from 'node:path';
import { checkLibs, debVersion, extractPackages, PASSWORD, SYS_USER } from '../lib/setup.js';
import { HOST, type Ctx, type Driver, type Launch } from './types.js';

export const pureftpd: Driver = {
  name: 'pure-ftpd',
  async prepare(ctx: Ctx): Promise<Launch> {
    const { tree, libPath } = extractPackages('pure-ftpd', ['pure-ftpd']);
    const bin = path.join(tree, 'usr/sbin/pure-ftpd');
    checkLibs(bin, libPath);
    return {
      cmd: bin,
      args: [
        '-S', `${HOST},${ctx.port}`,
        '-p', `${ctx.pasvMin}:${ctx.pasvMax}`,
        '-l', 'unix', // local users from /etc/shadow
        '-E', // no anonymous
        '-A', // chroot everyone
        '-H', // no reverse DNS
        '-c', '20000', // max clients (default 50)
        '-C', '20000', // max clients per IP
        '-L', '100000:8', // listing limits (default 10000 files)
        '-I', '60', // idle minutes
        '-f', 'none', // no syslog
        '-Y', '1', // TLS allowed, not required
        '-2', `${ctx.cert.cert},${ctx.cert.key}`,
      ],
      env: { ...process.env, LD_LIBRARY_PATH: libPath },
      user: SYS_USER,
      password: PASSWORD,
      tls: true,
      version: `pure-ftpd ${debVersion('pure-ftpd')}`,
      notes: ['unix (shadow) login, chroot, -c/-C 20000 (but capped at half the passive range: 2,000), -L 100000:8'],
    };
  },
};
