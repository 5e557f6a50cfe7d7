// `nffi-inspect queue PID [--watch [--interval S]] [--wide] [--json]`: the nffi runtimes of each
// worker. --watch keeps the client (a master's new workers join after a reload) and prints a
// table per interval with the rates since the previous one (enq/s, done/s), or one NDJSON line
// per interval with --json, until Ctrl-C. --interval without --watch is a usage error.
import { userMessage } from '../errors.js';
import type { Command } from 'commander';
import { QueueView, type QueueState } from '../../store/queue.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { termText, writeStyled } from '../format/escape.js';
import { formatQueue, queueJson } from '../format/queue.js';
import { tableOptions } from '../format/table.js';
import { interrupted, parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  watch?: boolean;
  interval?: string;
  wide?: boolean;
}

function print(state: QueueState, opts: Options, watching: boolean): void {
  if (opts.json) return printJson(queueJson(state.workers, { rates: watching }), !watching);
  const clear = watching && process.stdout.isTTY ? '\x1b[H\x1b[2J' : '';
  const stamp = watching ? `${new Date(state.at).toISOString()}\n` : '';
  const sep = watching && !clear ? '\n' : '';
  const errors = state.workers.filter((w) => w.error).map((w) => termText(userMessage(`worker ${w.pid}: ${w.error}`)));
  // the screen clear is ours; everything after it is escaped for the terminal
  process.stdout.write(clear);
  writeStyled(stamp + [formatQueue(state.workers, { ...tableOptions(opts), rates: watching }), ...errors].join('\n') + '\n' + sep);
}

export function registerQueue(program: Command): void {
  withProbeOptions(program
    .command('queue')
    .description('show the nffi runtimes of the workers: depth, in flight, counters, p50/p99 latencies')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--watch', 'refresh until Ctrl-C (NDJSON with --json)')
    .option('--interval <S>', 'with --watch: seconds between refreshes, default 1 (or a duration: 500ms)')
    .option('--wide', 'every column, nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', 'print JSON (with --watch: one line per refresh, with the rates)'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      if (opts.interval !== undefined && !opts.watch) throw new UsageError('--interval needs --watch (one sample has no interval)');
      const intervalMs = parseDuration(opts.interval ?? '1', '--interval');
      if (intervalMs <= 0) throw new UsageError('--interval must be positive');
      await withClient(pid, opts, async (c) => {
        const queue = new QueueView(c);
        if (!opts.watch) return print(await queue.sample(), opts, false);
        const stop = interrupted();
        queue.onChange((s) => s && print(s, opts, true));
        await queue.watch(intervalMs, stop.promise).finally(() => stop.dispose());
      });
    });
}
