// pyftpdlib from Debian's python3-pyftpdlib, unpacked into the cache and put on PYTHONPATH.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { debVersion, extractPackages, PASSWORD } from '../lib/setup.js';
import { BENCH_DIR, run } from '../lib/util.js';
import { HOST, type Ctx, type Driver, type Launch } from './types.js';

export const pyftpdlib: Driver = {
  name: 'pyftpdlib',
  async prepare(ctx: Ctx): Promise<Launch> {
    const { tree } = extractPackages('pyftpdlib', ['python3-pyftpdlib']);
    const pyPath = path.join(tree, 'usr/lib/python3/dist-packages');
    if (!existsSync(path.join(pyPath, 'pyftpdlib'))) throw new Error('python3-pyftpdlib has no pyftpdlib package inside');
    // Debian's own python3 (with Debian's pyOpenSSL for TLS), not a pyenv shim.
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const env = { ...process.env, PYTHONPATH: pyPath };
    const hasSsl = run(python, ['-c', 'import OpenSSL'], { env }).code === 0;
    const pyVer = run(python, ['-c', 'import sys; print(sys.version.split()[0])']).stdout.trim();
    const args = [path.join(BENCH_DIR, 'peers', 'pyftpdlib_server.py'), HOST, String(ctx.port), ctx.ds.root, 'bench', PASSWORD, String(ctx.pasvMin), String(ctx.pasvMax)];
    if (hasSsl) args.push(ctx.cert.cert, ctx.cert.key);
    return {
      cmd: python,
      args,
      env,
      user: 'bench',
      password: PASSWORD,
      tls: hasSsl ? true : 'pyOpenSSL (python3-openssl) is not importable',
      version: `pyftpdlib ${debVersion('python3-pyftpdlib')} on Python ${pyVer}`,
      notes: ['DummyAuthorizer (plain-text password), epoll, sendfile'],
    };
  },
};
