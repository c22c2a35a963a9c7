/**
 * Embedding Moat: users from your own code instead of a users file, and every
 * upload reported to your application. Run: npx tsx examples/embed.ts
 */
import { createServer, hashPassword, verifyPassword, type User, type UserStore } from '../src/index.js';

const accounts = new Map<string, { hash: string; user: User }>();
accounts.set('scanner', {
  hash: await hashPassword('scan-to-folder-2026'),
  user: { name: 'scanner', home: 'scans', permissions: 'elw', enabled: true },
});

const users: UserStore = {
  async authenticate(name, password) {
    const account = accounts.get(name);
    if (!account) return null;
    return (await verifyPassword(password, account.hash)) ? account.user : null;
  },
};

const server = createServer({
  users,
  config: { listen: ['127.0.0.1:2121'], root: './ftp-data', passive: { ports: '40000-40100' } },
});
server.events.on('upload', (e) => {
  if (e.result === 'ok') console.log(`${e.user} uploaded ${e.path} (${e.bytes} bytes)`);
});
console.log('listening on', await server.listen());
process.once('SIGINT', () => void server.close());
