// `nffi-inspect coroutines PID [--frames N] [--json]`: every coroutine of every worker.
import type { Command } from 'commander';
import { CoroutinesView } from '../../store/coroutines.js';
import { formatCoroutines } from '../format/coroutines.js';
import { writeTerm } from '../format/escape.js';
import { parseCount, parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  frames?: string;
}

export function registerCoroutines(program: Command): void {
  withProbeOptions(program
    .command('coroutines')
    .description('list every coroutine of the workers: kind, state, wait reason, top frames')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--frames <N>', 'top frames per coroutine', '3')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const frames = parseCount(opts.frames ?? '3', '--frames');
      const workers = await withClient(pid, opts, (c) => new CoroutinesView(c).refresh(frames));
      if (opts.json) printJson({ workers });
      else writeTerm(formatCoroutines(workers) + '\n');
    });
}
