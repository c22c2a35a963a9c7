/**
 * A minimal `moat` entry for spawn tests of `moat user`, standing in for
 * src/cli/main.ts: same error contract (CliError → "moat: <message>", exit 1).
 * The users file defaults to $MOAT_USERS_FILE.
 */
import { Command } from 'commander';
import { CliError, registerUserCommands } from '../../src/cli/user.js';

const program = new Command('moat');
registerUserCommands(program, { usersFile: async () => process.env['MOAT_USERS_FILE'] ?? '' });
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CliError)) throw err;
  process.stderr.write(`moat: ${err.message}\n`);
  process.exitCode = err.exitCode;
}
