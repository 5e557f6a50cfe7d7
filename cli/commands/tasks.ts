// `nffi-inspect tasks PID [--older-than DUR] [--max N | --all] [--json]`: pending nffi tasks,
// oldest first, and who waits on them. Like gdb's `print elements` or py-spy's stack limits,
// a worker lists at most --max tasks (default 1000) and says how many there are in all; the
// rest are fetched page by page (at most 1000 tasks per agent answer) only when asked for.
import type { Command } from 'commander';
import type { FFI } from '../../probe/protocol-types.js';
import type { Session } from '../../probe/session.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { writeTerm } from '../format/escape.js';
import { formatTasks, type TaskRow, type WorkerTasks } from '../format/tasks.js';
import { list, parseCount, parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  olderThan?: string;
  max?: string;
  all?: boolean;
}

export const DEFAULT_MAX = 1000;
/** The most tasks one agent answer holds (lua/nffi/inspect/ffi_view.lua). */
const PAGE = 1000;

type Frames = TaskRow['coroutine'];

function coroutineOf(t: FFI.Task): Frames {
  const c = t.coroutine as { id?: number; frames?: { function: string; source: string; line: number }[] } | undefined;
  if (!c || typeof c.id !== 'number') return null;
  return { id: c.id, frames: list<{ function: string; source: string; line: number }>(c.frames).map((f) => ({ function: f.function, source: f.source, line: f.line })) };
}

export function taskRow(t: FFI.Task): TaskRow {
  return {
    id: t.id, runtime: t.runtime, method: t.method, state: t.state, age_ms: t.age_ms,
    req_len: t.req_len, req_preview: t.req_preview, coroutine: coroutineOf(t),
  };
}

/**
 * The rest of one worker's tasks after its first answer, a page at a time, up to `want` and
 * never past the total of that first answer: a queue that fills faster than we page cannot
 * keep the listing going. truncated: the agent has more, and fewer were listed than that total.
 */
async function more(s: Session, w: WorkerTasks, params: FFI.GetTasksParams, want: number): Promise<void> {
  const limit = Math.min(want, w.total);
  let hasMore = w.truncated;
  while (hasMore && w.tasks.length < limit && w.tasks.length > 0) {
    const page = await s.call(w.pid, 'FFI.getTasks', {
      ...params, max: Math.min(PAGE, limit - w.tasks.length), after_id: w.tasks[w.tasks.length - 1]!.id, total: false,
    });
    const rows = list<FFI.Task>(page.tasks).map(taskRow);
    w.tasks.push(...rows);
    hasMore = page.truncated === true && rows.length > 0;
  }
  w.truncated = hasMore && w.tasks.length < w.total;
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
      const params: FFI.GetTasksParams = opts.olderThan !== undefined
        ? { older_than_ms: parseDuration(opts.olderThan, '--older-than') } : {};
      const workers = await withSession(pid, opts, async (s) => {
        const first = await s.callAll('FFI.getTasks', { ...params, max: Math.min(PAGE, want) });
        const out: WorkerTasks[] = first.map((r) => ({
          pid: r.pid,
          tasks: list<FFI.Task>(r.result?.tasks).map(taskRow),
          total: r.result?.total ?? 0,
          truncated: r.result?.truncated === true,
          ...(r.error ? { error: r.error } : {}),
        }));
        await Promise.all(out.filter((w) => !w.error).map((w) => more(s, w, params, want).catch((err: Error) => {
          w.error = err.message;
        })));
        return out;
      });
      if (opts.json) printJson({ workers });
      else writeTerm(formatTasks(workers) + '\n');
    });
}
