// ftp-srv peer for Moat's benchmark: one user, one root, a passive range, optional explicit FTPS.
// Usage: node ftp-srv-server.cjs MODULES_DIR HOST PORT ROOT USER PASSWORD PASV_MIN PASV_MAX [CERT KEY]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [modules, host, port, root, user, password, pmin, pmax, cert, key] = process.argv.slice(2);
const FtpSrv = require(path.join(modules, 'ftp-srv'));
const bunyan = require(path.join(modules, 'bunyan'));

const server = new FtpSrv({
  url: `ftp://${host}:${port}`,
  pasv_url: host,
  pasv_min: Number(pmin),
  pasv_max: Number(pmax),
  anonymous: false,
  greeting: ['ftp-srv ready'],
  // TLS 1.2 at most: ftp-srv's AUTH TLS (a TLSSocket wrapped around the live socket) fails with TLS 1.3.
  tls: cert ? { cert: fs.readFileSync(cert), key: fs.readFileSync(key), maxVersion: 'TLSv1.2' } : false,
  log: bunyan.createLogger({ name: 'ftp-srv', level: 'fatal' }),
});
server.on('login', ({ username, password: pass }, resolve, reject) => {
  if (username === user && pass === password) resolve({ root });
  else reject(new Error('Bad username or password'));
});
server.on('client-error', () => {});
server.listen().then(() => console.log('listening'));
