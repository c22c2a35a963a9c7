import { ConfigError, loadConfig } from '../config/load.js';
import type { MoatConfig } from '../config/schema.js';
import { CliError } from './user.js';

/** The configuration a state command works with: -c FILE (or the defaults), --state-dir over it. */
export async function stateConfigOf(flags: { config?: string; stateDir?: string }): Promise<MoatConfig> {
  try {
    return await loadConfig(flags.config, { state_dir: flags.stateDir });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`invalid configuration:\n  ${error.problems.join('\n  ')}`);
    throw error;
  }
}

/** The state folder a command works on: --state-dir, else the configuration's (-c FILE), else ./.moat. */
export async function stateDirOf(flags: { config?: string; stateDir?: string }): Promise<string> {
  return (await stateConfigOf(flags)).state_dir;
}
