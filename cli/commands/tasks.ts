// `nffi-inspect tasks PID [--older-than DUR] [--max N | --all] [--frames N] [--wide] [--json]`:
// pending nffi tasks, oldest first, the request each belongs to and where its coroutine waits in
// application code: at most --max per worker (default 1000) and how many there are in all
// (store/tasks.ts pages through the rest only when asked).
import type { Command } from 'commander';
import { DEFAULT_MAX, TasksView, WALK_MAX } from '../../store/tasks.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { writeStyled } from '../format/escape.js';
import { formatTasks } from '../format/tasks.js';
import { tableOptions } from '../format/table.js';
import { parseCount, parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';
import { ruleFrom, withFrameRuleOptions, type FrameRuleOptions } from './coroutines.js';

interface Options extends ProbeOptions, FrameRuleOptions {
  olderThan?: string;
  max?: string;
  all?: boolean;
  frames?: string;
  wide?: boolean;
}

export function registerTasks(program: Command): void {
  withProbeOptions(withFrameRuleOptions(program
    .command('tasks')
    .description(`list pending nffi tasks, oldest first, with the request and the Lua stack of each waiting coroutine: at most ${DEFAULT_MAX} `
      + 'per worker unless --max or --all says otherwise, and how many there are in all')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--older-than <DUR>', 'only tasks older than DUR: 100ms, 2s, 1m; a bare number is seconds (100 = 100 s)')
    .option('--max <N>', `list at most N tasks per worker (default ${DEFAULT_MAX}); the total is counted anyway`)
    .option('--all', 'list every task (100,000 tasks: ~5 s and ~80 MB of JSON)')
    .option('--frames <N>', 'frames per task in the stacks under the table, from the first in application code (default 3)')
    .option('--wide', 'every column, nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', `print JSON: {"workers":[{"pid","tasks":[...],"total","truncated"}]}; each waiter's frames and request are asked for, in one walk of a worker's coroutines when it has at most ${WALK_MAX} tasks`)))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      if (opts.all && opts.max !== undefined) throw new UsageError('--max and --all exclude each other');
      const want = opts.all ? Infinity : opts.max !== undefined ? parseCount(opts.max, '--max') : DEFAULT_MAX;
      const frames = opts.frames !== undefined ? parseCount(opts.frames, '--frames') : 3;
      const olderThanMs = opts.olderThan !== undefined ? parseDuration(opts.olderThan, '--older-than') : undefined;
      const rule = ruleFrom(opts);
      const workers = await withClient(pid, opts, (c) => new TasksView(c).load({ want, rule, skip: true, enrich: opts.json ? 'walk' : true, ...(olderThanMs !== undefined ? { olderThanMs } : {}) }));
      if (opts.json) printJson({ workers });
      else writeStyled(formatTasks(workers, { ...tableOptions(opts), rule, frames }) + '\n');
    });
}
