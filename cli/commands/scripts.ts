// `nffi-inspect scripts PID [PATTERN] [--json]`: the Lua chunks each worker has loaded (the names
// a breakpoint's FILE is matched against), through Debugger.getScripts; in-process or through
// a running `serve`.
import type { Command } from 'commander';
import { ScriptsView } from '../../store/scripts.js';
import { writeTerm } from '../format/escape.js';
import { formatScripts } from '../format/scripts.js';
import { parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

export function registerScripts(program: Command): void {
  withProbeOptions(program
    .command('scripts')
    .description('list the Lua chunks each worker has loaded (what a breakpoint FILE is matched against)')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .argument('[PATTERN]', 'only chunks whose name contains this text')
    .option('--json', 'print JSON: {"workers":[{"pid","scripts":[{"source","first_line","last_line","functions"}],"total"}]}'))
    .action(async (pidText: string, pattern: string | undefined, opts: ProbeOptions) => {
      const workers = await withClient(parsePid(pidText), opts, (c) => new ScriptsView(c).refresh(pattern));
      if (opts.json) printJson({ workers });
      else writeTerm(formatScripts(workers, pattern) + '\n');
    });
}
