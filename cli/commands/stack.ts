// `nffi-inspect stack PID CO [--locals] [--json]`: the stack of one coroutine of one worker.
import type { Command } from 'commander';
import { workersIfMaster } from '../../client/host.js';
import { StackError, StackView } from '../../store/stack.js';
import { CliError, UsageError } from '../errors.js';
import { writeTerm } from '../format/escape.js';
import { formatStack } from '../format/stack.js';
import { outputWidth } from '../format/table.js';
import { parseCount, parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  locals?: boolean;
  allUpvalues?: boolean;
  wide?: boolean;
}

export function registerStack(program: Command): void {
  withProbeOptions(program
    .command('stack')
    .description('print the stack of one coroutine (ids from `coroutines`), optionally with locals')
    .argument('<PID>', 'worker pid (coroutine ids are per worker)')
    .argument('<CO>', 'coroutine id')
    .option('--locals', 'add locals, upvalues and varargs per frame')
    .option('--all-upvalues', 'with --locals: also the upvalues that only keep C functions, ngx.* or loaded modules at hand (hidden by default)')
    .option('--wide', 'lines as long as they are (default: cut to the terminal, 80 columns when piped)')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, coText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const co = parseCount(coText, 'coroutine id');
      const workers = workersIfMaster(pid);
      if (workers) throw new UsageError(`stack needs a worker pid (coroutine ids are per worker); workers of ${pid}: ${workers.join(', ')}`);
      const stack = await withClient(pid, opts, (c) => new StackView(c).load(pid, co, { locals: opts.locals }))
        .catch((err: unknown) => {
          // the agent's refusal in its own words: "coroutine 83 of worker 2039 has finished"
          throw err instanceof StackError ? new CliError(err.message) : err;
        });
      if (opts.json) printJson(stack);
      else {
        const fit = outputWidth({ wide: opts.wide });
        writeTerm(formatStack(stack.frames, undefined, stack.request, { allUpvalues: opts.allUpvalues, ...(fit !== undefined ? { fit } : {}) }) + '\n');
      }
    });
}
