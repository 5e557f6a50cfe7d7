// `nffi-inspect stack PID CO [--locals] [--json]`: the stack of one coroutine of one worker.
import type { Command } from 'commander';
import { readNginxProc, workersOf } from '../../probe/procs.js';
import { UsageError } from '../errors.js';
import { writeTerm } from '../format/escape.js';
import { formatStack } from '../format/stack.js';
import { list, parseCount, parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  locals?: boolean;
}

export function registerStack(program: Command): void {
  withProbeOptions(program
    .command('stack')
    .description('print the stack of one coroutine (ids from `coroutines`), optionally with locals')
    .argument('<PID>', 'worker pid (coroutine ids are per worker)')
    .argument('<CO>', 'coroutine id')
    .option('--locals', 'add locals, upvalues and varargs per frame')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, coText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const co = parseCount(coText, 'coroutine id');
      const proc = readNginxProc(pid);
      if (proc?.role === 'master') {
        const pids = workersOf(pid).map((w) => w.pid).join(', ');
        throw new UsageError(`stack needs a worker pid (coroutine ids are per worker); workers of ${pid}: ${pids}`);
      }
      const result = await withSession(pid, opts, (s) =>
        s.call(pid, 'Lua.getStack', { coroutine: co, locals: Boolean(opts.locals) }));
      const request = result.request ?? null;
      if (opts.json) printJson({ pid, coroutine: co, request, frames: list(result.frames) });
      else writeTerm(formatStack(list(result.frames), undefined, request) + '\n');
    });
}
