import { authCommands } from './auth.js';
import { dataConnCommands } from './data-conn.js';
import { fileCommands } from './files.js';
import { listingCommands } from './listing.js';
import { miscCommands } from './misc.js';
import { navCommands } from './nav.js';
import { CommandTable } from './table.js';
import { transferCommands } from './transfer.js';
import type { CommandSpec } from './types.js';

/** Every command family; TLS adds its own (AUTH, PBSZ, PROT, CCC) when configured. */
export function buildCommandTable(extra: CommandSpec[] = []): CommandTable {
  return new CommandTable([
    ...authCommands,
    ...miscCommands,
    ...navCommands,
    ...fileCommands,
    ...transferCommands,
    ...listingCommands,
    ...dataConnCommands,
    ...extra,
  ]);
}
