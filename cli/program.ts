// Builds the commander program. Commands live one per file under cli/commands/ and register
// themselves through program.command() so they inherit exitOverride/configureOutput below.
import type { Command } from 'commander';
import { baseProgram } from './base.js';
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

export { VERSION } from './base.js';

export function buildProgram(): Command {
  const program = baseProgram();
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
