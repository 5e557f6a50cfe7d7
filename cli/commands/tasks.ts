// `nffi-inspect tasks PID [--older-than DUR] [--max N | --all] [--json]`: pending nffi tasks,
// oldest first, and who waits on them: at most --max per worker (default 1000) and how many
// there are in all (store/tasks.ts pages through the rest only when asked).
import type { Command } from 'commander';
import { DEFAULT_MAX, TasksView } from '../../store/tasks.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { writeTerm } from '../format/escape.js';
import { formatTasks } from '../format/tasks.js';
import { parseCount, parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  olderThan?: string;
  max?: string;
  all?: boolean;
}

export function registerTasks(program: Command): void {
  withProbeOptions(program
    .command('tasks')
    .description(`list pending nffi tasks, oldest first, with the Lua stack of each waiting coroutine: at most ${DEFAULT_MAX} `
      + 'per worker unless --max or --all says otherwise, and how many there are in all')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--older-than <DUR>', 'only tasks older than DUR (e.g. 100ms, 2s, 1m)')
    .option('--max <N>', `list at most N tasks per worker (default ${DEFAULT_MAX}); the total is counted anyway`)
    .option('--all', 'list every task (100,000 tasks: ~5 s and ~80 MB of JSON)')
    .option('--json', 'print JSON: {"workers":[{"pid","tasks":[...],"total","truncated"}]}'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      if (opts.all && opts.max !== undefined) throw new UsageError('--max and --all exclude each other');
      const want = opts.all ? Infinity : opts.max !== undefined ? parseCount(opts.max, '--max') : DEFAULT_MAX;
      const olderThanMs = opts.olderThan !== undefined ? parseDuration(opts.olderThan, '--older-than') : undefined;
      const workers = await withClient(pid, opts, (c) => new TasksView(c).load({ want, ...(olderThanMs !== undefined ? { olderThanMs } : {}) }));
      if (opts.json) printJson({ workers });
      else writeTerm(formatTasks(workers) + '\n');
    });
}
