// Pending nffi tasks per worker (FFI.getTasks), oldest first, and who waits on them. Like gdb's
// `print elements`, a worker lists at most `want` tasks and says how many there are in all; the
// rest are fetched page by page (at most 1000 tasks per agent answer) only when asked for.
import type { ProbeClient } from '../client/client.js';
import type { FFI } from '../probe/protocol-types.js';
import { brief, type FrameBrief } from './coroutines.js';
import { list, View } from './view.js';

export interface TaskRow {
  id: number;
  runtime: string;
  method: string;
  state: string;
  /** null when the worker's libnffi is built without instrumentation (NFFI_NO_INSTRUMENT). */
  age_ms: number | null;
  req_len: number;
  req_preview: string;
  coroutine: { id: number; frames: FrameBrief[] } | null;
}

/** total: matching tasks in the worker; truncated: more follow the last one listed. */
export interface WorkerTasks { pid: number; tasks: TaskRow[]; total: number; truncated: boolean; error?: string }

export const DEFAULT_MAX = 1000;
/** The most tasks one agent answer holds (lua/nffi/inspect/ffi_view.lua). */
export const PAGE = 1000;

function coroutineOf(t: FFI.Task): TaskRow['coroutine'] {
  const c = t.coroutine;
  if (!c || typeof c.id !== 'number') return null;
  return { id: c.id, frames: list<FrameBrief>(c.frames).map(brief) };
}

export function taskRow(t: FFI.Task): TaskRow {
  return {
    id: t.id, runtime: t.runtime, method: t.method, state: t.state, age_ms: t.age_ms ?? null,
    req_len: t.req_len, req_preview: t.req_preview, coroutine: coroutineOf(t),
  };
}

export interface TaskQuery {
  /** Only tasks older than this. */
  olderThanMs?: number;
  /** List at most this many per worker (Infinity: all); default DEFAULT_MAX. */
  want?: number;
}

export class TasksView extends View<WorkerTasks[]> {
  private params: FFI.GetTasksParams = {};

  constructor(private readonly client: ProbeClient) {
    super([]);
  }

  /** The first `want` tasks of every worker, and each worker's total. */
  async load(q: TaskQuery = {}): Promise<WorkerTasks[]> {
    const want = q.want ?? DEFAULT_MAX;
    this.params = q.olderThanMs !== undefined ? { older_than_ms: q.olderThanMs } : {};
    const first = await this.client.callAll('FFI.getTasks', { ...this.params, max: Math.min(PAGE, want) });
    const out: WorkerTasks[] = first.map((r) => ({
      pid: r.pid,
      tasks: list<FFI.Task>(r.result?.tasks).map(taskRow),
      total: r.result?.total ?? 0,
      truncated: r.result?.truncated === true,
      ...(r.error ? { error: r.error } : {}),
    }));
    await Promise.all(out.filter((w) => !w.error).map((w) => this.more(w, want).catch((err: Error) => {
      w.error = err.message;
    })));
    return this.publish(out);
  }

  /** Up to `count` more tasks of worker `pid` after the ones listed (the TUI's next page). */
  async next(pid: number, count = PAGE): Promise<WorkerTasks[]> {
    const w = this.state.find((x) => x.pid === pid && !x.error);
    if (!w) return this.state;
    const copy = { ...w, tasks: [...w.tasks] };
    await this.more(copy, copy.tasks.length + count);
    return this.publish(this.state.map((x) => (x === w ? copy : x)));
  }

  /**
   * The rest of one worker's tasks after what it holds, a page at a time, up to `want` and
   * never past the total of its first answer: a queue that fills faster than we page cannot
   * keep the listing going. truncated: the agent has more, and fewer were listed than that total.
   */
  private async more(w: WorkerTasks, want: number): Promise<void> {
    const limit = Math.min(want, w.total);
    let hasMore = w.truncated;
    while (hasMore && w.tasks.length < limit && w.tasks.length > 0) {
      const page = await this.client.call(w.pid, 'FFI.getTasks', {
        ...this.params, max: Math.min(PAGE, limit - w.tasks.length), after_id: w.tasks[w.tasks.length - 1]!.id, total: false,
      });
      const rows = list<FFI.Task>(page.tasks).map(taskRow);
      w.tasks.push(...rows);
      hasMore = page.truncated === true && rows.length > 0;
    }
    w.truncated = hasMore && w.tasks.length < w.total;
  }
}
