// The program before any command is registered: its name, version and how it reports errors.
// Kept apart from program.ts (which loads every command, the TUI among them) so that main.ts
// can run the commands that read only /proc and files (ps, config) without loading the rest.
import { Command } from 'commander';

export const VERSION = '0.1.0';

export function baseProgram(): Command {
  return new Command('nffi-inspect')
    .description('inspect nginx/OpenResty Lua workers and nffi runtimes without restarting them')
    .version(VERSION, '-V, --version')
    // Throw CommanderError instead of calling process.exit, so main.ts decides exit codes.
    .exitOverride()
    // Commander prints "error: ..." itself; main.ts prints our one-line form instead.
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError(true);
}

/** Commands that need none of the others' modules: name -> its register function, loaded alone. */
export const LIGHT_COMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
  ps: async () => (await import('./commands/ps.js')).registerPs,
  config: async () => (await import('./commands/config.js')).registerConfig,
};
