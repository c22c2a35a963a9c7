import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerBanCommands } from './ban.js';
import { registerCertCommands } from './cert.js';
import { registerServeCommands, usersFileOf } from './serve.js';
import { CliError, registerUserCommands } from './user.js';
import { stateConfigOf } from './state-dir.js';
import { registerWhoCommand } from './who.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('moat')
    .description('Moat: a secure FTP/FTPS server for one jailed folder')
    .version(pkg.version, '-V, --version', 'print the version')
    .showHelpAfterError();
  registerServeCommands(program);
  registerCertCommands(program);
  registerBanCommands(program);
  registerWhoCommand(program);
  registerUserCommands(program, { usersFile: async (where) => usersFileOf(await stateConfigOf(where)) });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    // A file the command needs and cannot use (EACCES, ENOSPC, ...): the errno message names it.
    if (error instanceof CliError || typeof (error as NodeJS.ErrnoException | undefined)?.code === 'string') {
      process.stderr.write(`moat: ${(error as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

await main(process.argv);
