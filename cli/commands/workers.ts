// `nffi-inspect workers PID [--json]`: the attached workers, their agent's versions, JIT state
// and breakpoint mode (watching, or which hook and why; Agent.getStats).
import type { Command } from 'commander';
import { WorkersView } from '../../store/workers.js';
import { writeStyled } from '../format/escape.js';
import { tableOptions } from '../format/table.js';
import { formatWorkers } from '../format/workers.js';
import { parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

export function registerWorkers(program: Command): void {
  withProbeOptions(program
    .command('workers')
    .description('list the workers of a master (or one worker): id, user, versions, JIT state, breakpoint mode')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--wide', 'every column, nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: ProbeOptions & { wide?: boolean }) => {
      const workers = await withClient(parsePid(pidText), opts, (c) => new WorkersView(c).refresh());
      if (opts.json) printJson({ workers });
      else writeStyled(formatWorkers(workers, tableOptions(opts)) + '\n');
    });
}
