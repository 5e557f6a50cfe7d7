// Builds the commander program. Commands live one per file under cli/commands/ and register
// themselves through program.command() so they inherit exitOverride/configureOutput below.
import { Command } from 'commander';
import { registerAttach } from './commands/attach.js';
import { registerBreakpoint } from './commands/breakpoint.js';
import { registerBreakpoints } from './commands/breakpoints.js';
import { registerConfig } from './commands/config.js';
import { registerCoroutines } from './commands/coroutines.js';
import { registerDetach } from './commands/detach.js';
import { registerPs } from './commands/ps.js';
import { registerQueue } from './commands/queue.js';
import { registerScripts } from './commands/scripts.js';
import { registerServe } from './commands/serve.js';
import { registerStack } from './commands/stack.js';
import { registerTasks } from './commands/tasks.js';
import { registerWorkers } from './commands/workers.js';

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
  registerPs(program);
  registerWorkers(program);
  registerCoroutines(program);
  registerStack(program);
  registerQueue(program);
  registerTasks(program);
  registerAttach(program);
  registerBreakpoint(program);
  registerBreakpoints(program);
  registerScripts(program);
  registerDetach(program);
  registerServe(program);
  registerConfig(program);
  return program;
}
