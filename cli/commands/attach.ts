// `nffi-inspect attach PID [--refresh DUR] [--warn-depth N] [--bad-depth N] [--warn-p99 DUR]
// [--bad-p99 DUR] [--no-color]`: the TUI (tui/app.ts) on a master (all its workers, and the
// ones a reload brings) or one worker. Not a terminal, or TERM=dumb: one line naming the
// one-shot commands, exit 1, and nothing is attached.
import type { Command } from 'commander';
import { runAttach } from '../../tui/app.js';
import { TermError } from '../../tui/term.js';
import type { QueueThresholds } from '../../tui/thresholds.js';
import { parseDuration } from '../duration.js';
import { CliError, UsageError } from '../errors.js';
import { clientOptions, parseCount, parsePid, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  refresh?: string;
  warnDepth?: string;
  badDepth?: string;
  warnP99?: string;
  badP99?: string;
  color?: boolean;
}

const ONE_SHOT = 'the one-shot commands work without one: workers, coroutines, stack, queue (--watch), tasks, breakpoint, breakpoints (--json for scripts)';

export function attachThresholds(opts: Options): Partial<QueueThresholds> {
  const t: Partial<QueueThresholds> = {};
  if (opts.warnDepth !== undefined) t.warnDepth = parseCount(opts.warnDepth, '--warn-depth');
  if (opts.badDepth !== undefined) t.badDepth = parseCount(opts.badDepth, '--bad-depth');
  if (opts.warnP99 !== undefined) t.warnP99 = parseDuration(opts.warnP99, '--warn-p99');
  if (opts.badP99 !== undefined) t.badP99 = parseDuration(opts.badP99, '--bad-p99');
  if (t.warnDepth !== undefined && t.badDepth !== undefined && t.badDepth < t.warnDepth) throw new UsageError('--bad-depth must not be below --warn-depth');
  if (t.warnP99 !== undefined && t.badP99 !== undefined && t.badP99 < t.warnP99) throw new UsageError('--bad-p99 must not be below --warn-p99');
  return t;
}

export function registerAttach(program: Command): void {
  withProbeOptions(program
    .command('attach')
    .description('live TUI: FFI queues, pending tasks, coroutines, stacks and locals, breakpoint hits, a command line')
    .argument('<PID>', 'nginx master (all workers, also after a reload) or worker pid')
    .option('--refresh <DUR>', 'time between samples (+ and - change it live)', '500ms')
    .option('--warn-depth <N>', 'queue depth shown yellow from N (default 100)')
    .option('--bad-depth <N>', 'queue depth shown red from N (default 1000; a full queue always)')
    .option('--warn-p99 <DUR>', 'p99 latencies and task ages shown yellow from DUR (default 10ms)')
    .option('--bad-p99 <DUR>', 'p99 latencies and task ages shown red from DUR (default 100ms)')
    .option('--no-color', 'no colours (as NO_COLOR=1): bold, underline and reverse only'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const refreshMs = parseDuration(opts.refresh ?? '500ms', '--refresh');
      if (refreshMs < 50) throw new UsageError('--refresh must be at least 50ms');
      const thresholds = attachThresholds(opts);
      try {
        await runAttach({
          pid, refreshMs, thresholds, connect: clientOptions(opts), ...(opts.color === false && { color: false }),
        });
      } catch (err) {
        // term.ts says what is missing; the way on is the one-shot commands, each named
        if (err instanceof TermError) throw new CliError(`${err.message.replace(/;.*$/s, '')}; ${ONE_SHOT}`);
        throw err;
      }
    });
}
