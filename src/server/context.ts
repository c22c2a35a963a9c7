import type { User, UserStore } from '../auth/types.js';
import type { CommandTable } from '../commands/table.js';
import type { MoatConfig } from '../config/schema.js';
import type { PassivePorts } from '../data/passive.js';
import type { Guard } from '../guard/guard.js';
import type { DataSecurer } from '../session/data-setup.js';
import type { Session } from '../session/session.js';
import type { MoatEvents } from '../observe/events.js';
import type { Storage } from '../storage/types.js';

/** Creates the storage a logged-in user works in (jailed to their home). */
export type StorageFactory = (user: User) => Promise<Storage>;

/** What every session shares with the server: read-mostly, owned by Server. */
export interface ServerContext {
  config: MoatConfig;
  events: MoatEvents;
  users: UserStore;
  storageFor: StorageFactory;
  passive: PassivePorts;
  commands: CommandTable;
  /** Limits, bans, allow/deny lists and command rate: asked before accept, at login, per command. */
  guard: Guard;
  /** Wraps a data socket in TLS under PROT P; absent when TLS is not configured. */
  secureData?: DataSecurer;
  /** True when this session may not open a data connection in clear (tls.data = required, PROT C). */
  dataTlsRequired?: (session: Session) => boolean;
}

/** What a session knows about the listener that accepted it. */
export interface ListenerInfo {
  name: string;
  /** Passive address announced to clients (NAT); empty = the control connection's local address. */
  publicHost: string;
}
