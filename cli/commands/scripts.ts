// `nffi-inspect scripts PID [PATTERN] [--wide] [--json]`: the Lua chunks each worker has loaded (the names
// a breakpoint's FILE is matched against), through Debugger.getScripts; in-process or through
// a running `serve`.
import type { Command } from 'commander';
import { ScriptsView } from '../../store/scripts.js';
import { writeStyled } from '../format/escape.js';
import { formatScripts } from '../format/scripts.js';
import { tableOptions } from '../format/table.js';
import { parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

export function registerScripts(program: Command): void {
  withProbeOptions(program
    .command('scripts')
    .description('list the Lua chunks each worker has loaded (what a breakpoint FILE is matched against)')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .argument('[PATTERN]', 'only chunks whose name contains this text')
    .option('--wide', 'every column, nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', 'print JSON: {"workers":[{"pid","scripts":[{"source","first_line","last_line","functions"}],"total"}]}'))
    .action(async (pidText: string, pattern: string | undefined, opts: ProbeOptions & { wide?: boolean }) => {
      const workers = await withClient(parsePid(pidText), opts, (c) => new ScriptsView(c).refresh(pattern));
      if (opts.json) printJson({ workers });
      else writeStyled(formatScripts(workers, pattern, tableOptions(opts)) + '\n');
    });
}
