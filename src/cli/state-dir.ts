import { ConfigError, loadConfig } from '../config/load.js';
import { CliError } from './user.js';

/** The state folder a command works on: --state-dir, else the configuration's (-c FILE), else ./.moat. */
export async function stateDirOf(flags: { config?: string; stateDir?: string }): Promise<string> {
  try {
    return (await loadConfig(flags.config, { state_dir: flags.stateDir })).state_dir;
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`invalid configuration:\n  ${error.problems.join('\n  ')}`);
    throw error;
  }
}
