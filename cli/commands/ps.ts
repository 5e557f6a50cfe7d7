// `nffi-inspect ps [PID] [--agents] [--wide] [--json]`: the nginx masters on this host, each
// named by its prefix and configuration file, and their workers. Read from /proc only: nothing
// is attached unless --agents asks. "ready" is then measured, not guessed: a quick attach (the
// agent's hello within 1 s, then an immediate detach) to every serving worker, all in
// parallel. Workers we may not attach to say "permission denied"; workers held by a running
// `serve` say "attached (serve PID)" (from serve's registry entry, with or without --agents: an
// agent serves one probe at a time); shutting-down workers say "-".
import type { Command } from 'commander';
import { listNginx } from '../../client/host.js';
import { jsonText, writeStyled } from '../format/escape.js';
import { formatPs } from '../format/ps.js';
import { tableOptions } from '../format/table.js';
import { UsageError } from '../errors.js';

// pid.ts's helpers, here: it loads the client and the probe session, which ps (run alone by
// main.ts, under 0.5 s) does not need.
interface Options {
  runDir?: string;
  json?: boolean;
  agents?: boolean;
  wide?: boolean;
}

function parsePid(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new UsageError(`invalid PID '${text}'`);
  return Number(text);
}

export function registerPs(program: Command): void {
  program
    .command('ps')
    .description('list the nginx masters on this host (prefix, configuration file) and their workers; --agents: whether each worker\'s agent answers')
    .argument('[PID]', 'only this master (or the master of this worker)')
    .option('--agents', 'attach to each worker for a moment (in parallel, up to 1 s) to see whether its agent is ready')
    .option('--wide', 'nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', 'print JSON')
    .option('--run-dir <dir>', 'run directory shared with the agent (default /tmp/nffi-inspect.<uid>)')
    .action(async (pidText: string | undefined, opts: Options) => {
      const masters = await listNginx({
        ...(pidText !== undefined ? { only: parsePid(pidText) } : {}),
        ...(opts.agents ? { agents: true } : {}),
        ...(opts.runDir ? { runDir: opts.runDir } : {}),
      });
      if (opts.json) process.stdout.write(jsonText({ masters }, 2) + '\n');
      else writeStyled(formatPs(masters, tableOptions(opts)) + '\n');
    });
}
