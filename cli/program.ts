// Builds the commander program. Commands live one per file under cli/commands/ and register
// themselves through program.command() so they inherit exitOverride/configureOutput below.
import { Command } from 'commander';
import { registerConfig } from './commands/config.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('nffi-inspect')
    .description('inspect nginx/OpenResty Lua workers and nffi runtimes without restarting them')
    .version(VERSION, '-V, --version')
    // Throw CommanderError instead of calling process.exit, so main.ts decides exit codes.
    .exitOverride()
    // Commander prints "error: ..." itself; main.ts prints our one-line form instead.
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError(true);
  registerConfig(program);
  return program;
}
