// Pending nffi tasks per worker (FFI.getTasks), oldest first, and who waits on them. Like gdb's
// `print elements`, a worker lists at most `want` tasks and says how many there are in all; the
// rest are fetched page by page (at most 1000 tasks per agent answer) only when asked for.
import type { ProbeClient } from '../client/client.js';
import type { FFI, Lua } from '../probe/protocol-types.js';
import { brief, type FrameBrief } from './coroutines.js';
import { defaultFrameRule, userFrameIndex, type FrameRule } from './frames.js';
import { list, View } from './view.js';

export interface TaskRow {
  id: number;
  runtime: string;
  method: string;
  state: string;
  /** null when the worker's libnffi is built without instrumentation (NFFI_NO_INSTRUMENT). */
  age_ms: number | null;
  /** When it was enqueued, CLOCK_MONOTONIC ms (one clock for the host's workers: the tasks of
   * several workers sort by it, whenever each answer was taken); absent as age_ms is null. */
  enqueued_ms?: number;
  req_len: number;
  req_preview: string;
  coroutine: TaskCoroutine | null;
}

/** The coroutine waiting on a task. top_frame_index: its first frame in application code
 * (store/frames.ts), null when none listed is; request: the client request it serves, null
 * when none is known, undefined when not asked (the agent does not send it with the task). */
export interface TaskCoroutine {
  id: number;
  frames: FrameBrief[];
  top_frame_index: number | null;
  request?: Lua.Request | null;
  /** Frames above the first listed that the agent left out (FFI.getTasks skip). */
  skipped?: number;
}

/** total: matching tasks in the worker; truncated: more follow the last one listed. */
export interface WorkerTasks { pid: number; tasks: TaskRow[]; total: number; truncated: boolean; error?: string }

export const DEFAULT_MAX = 1000;
/** The most tasks one agent answer holds (lua/nffi/inspect/ffi_view.lua). */
export const PAGE = 1000;

function coroutineOf(t: FFI.Task, rule: FrameRule): TaskRow['coroutine'] {
  const c = t.coroutine;
  if (!c || typeof c.id !== 'number') return null;
  const frames = list<FrameBrief>(c.frames).map(brief);
  const user = userFrameIndex(frames, rule);
  const { request, skipped } = c as { request?: Lua.Request; skipped?: number };
  return {
    id: c.id, frames, top_frame_index: user >= 0 ? user : null, ...(request ? { request } : {}),
    ...(typeof skipped === 'number' && skipped > 0 ? { skipped } : {}),
  };
}

export function taskRow(t: FFI.Task, rule: FrameRule = defaultFrameRule()): TaskRow {
  return {
    id: t.id, runtime: t.runtime, method: t.method, state: t.state, age_ms: t.age_ms ?? null,
    ...(typeof t.enqueued_ms === 'number' ? { enqueued_ms: t.enqueued_ms } : {}), req_len: t.req_len, req_preview: t.req_preview, coroutine: coroutineOf(t, rule),
  };
}

/** The agent sends the top TASK_FRAMES (3) frames of a task's coroutine, all plumbing for a call
 * through nffi (co_yield, ngx/semaphore.lua, nffi/call.lua), and not its request. So for a
 * worker with at most WALK_MAX tasks the store walks its coroutines once (Lua.getCoroutines:
 * frames and request of each, ~0.1 ms per coroutine in the worker, in slices); past that it
 * asks the stacks of the first ENRICH_MAX waiters whose frames name no application code
 * (Lua.getStack, ~1 ms each, ENRICH_PARALLEL at a time) and their requests stay unknown. */
export const WALK_MAX = 2000;
export const ENRICH_MAX = 200;
const ENRICH_PARALLEL = 16;
const WALK_FRAMES = 16;

/** An abandoned task's waiter timed out and went on (the agent still names the coroutine, which
 * may serve another request by now): nothing of it is asked for. */
const waiterOf = (t: TaskRow): TaskCoroutine | null => (t.state === 'abandoned' ? null : t.coroutine);
const needsFrames = (c: TaskCoroutine | null): c is TaskCoroutine => c !== null && c.top_frame_index === null;
const needsAny = (c: TaskCoroutine | null): boolean => c !== null && (c.top_frame_index === null || c.request === undefined);

export interface TaskQuery {
  /** Only tasks older than this. */
  olderThanMs?: number;
  /** Which frame is the application's (default: frames.ts's rule). */
  rule?: FrameRule;
  /** Ask for the waiters' frames and requests when the tasks' frames do not reach application
   * code or their request is not known (WALK_MAX, ENRICH_MAX); default false: a front end
   * that samples often decides what it can afford (the CLI's `tasks` asks). 'walk': only
   * the one walk of a worker with at most WALK_MAX tasks, no stacks (`tasks --json`: one
   * request more at most, whatever the backlog). */
  enrich?: boolean | 'walk';
  /** List at most this many per worker (Infinity: all); default DEFAULT_MAX. */
  want?: number;
  /** Ask the agent to start each waiter's frames at its application code (by the rule's
   * patterns) and say its request: no walk or stack per waiter needed. */
  skip?: boolean;
}

export class TasksView extends View<WorkerTasks[]> {
  private params: FFI.GetTasksParams = {};
  private rule: FrameRule = defaultFrameRule();
  /** Workers whose agent answered skip (a waiter with skipped or request): their tasks say
   * where and for whom already, nothing more is asked. */
  private readonly skipping = new Set<number>();

  constructor(private readonly client: ProbeClient) {
    super([]);
  }

  /** The first `want` tasks of every worker, and each worker's total. */
  async load(q: TaskQuery = {}): Promise<WorkerTasks[]> {
    const want = q.want ?? DEFAULT_MAX;
    this.rule = q.rule ?? defaultFrameRule();
    this.params = q.olderThanMs !== undefined ? { older_than_ms: q.olderThanMs } : {};
    // each waiter from its application code, and its request (FFI.getTasks skip)
    if (q.skip && !this.rule.allFrames) this.params.skip = this.rule.patterns.join(',');
    const first = await this.client.callAll('FFI.getTasks', { ...this.params, max: Math.min(PAGE, want) });
    this.skipping.clear();
    if (this.params.skip !== undefined) {
      for (const r of first) {
        const told = list<FFI.Task>(r.result?.tasks).some((t) => t.coroutine && ('skipped' in t.coroutine || 'request' in t.coroutine));
        if (told) this.skipping.add(r.pid);
      }
    }
    const out: WorkerTasks[] = first.map((r) => ({
      pid: r.pid,
      tasks: list<FFI.Task>(r.result?.tasks).map((t) => taskRow(t, this.rule)),
      total: r.result?.total ?? 0,
      truncated: r.result?.truncated === true,
      ...(r.error ? { error: r.error } : {}),
    }));
    await Promise.all(out.filter((w) => !w.error).map((w) => this.more(w, want).catch((err: Error) => {
      w.error = err.message;
    })));
    if (q.enrich) await Promise.all(out.filter((w) => !w.error).map((w) => this.enrich(w, q.enrich === true)));
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
      const rows = list<FFI.Task>(page.tasks).map((t) => taskRow(t, this.rule));
      w.tasks.push(...rows);
      hasMore = page.truncated === true && rows.length > 0;
    }
    w.truncated = hasMore && w.tasks.length < w.total;
  }

  /** Frames and requests of the waiters, as far as the agent can tell (WALK_MAX above). */
  private async enrich(w: WorkerTasks, stacks: boolean): Promise<void> {
    if (!w.tasks.some((t) => needsAny(waiterOf(t)))) return;
    if (w.total <= WALK_MAX) await this.walk(w).catch(() => undefined);
    // an agent that answered skip found every application frame there was to find
    if (stacks && !this.skipping.has(w.pid)) await this.stacks(w);
  }

  /** One walk of the worker's coroutines: frames and request of every waiter still there. */
  private async walk(w: WorkerTasks): Promise<void> {
    const r = await this.client.call(w.pid, 'Lua.getCoroutines', { frames: WALK_FRAMES });
    const byId = new Map(list<Lua.Coroutine>(r.coroutines).map((c) => [c.id, c]));
    for (const t of w.tasks) {
      const c = waiterOf(t);
      const found = c && byId.get(c.id);
      if (!c || !found) continue;
      const frames = list<Lua.Frame>(found.frames).map(brief);
      const user = userFrameIndex(frames, this.rule);
      if (c.top_frame_index === null && user >= 0) {
        c.frames = frames;
        c.top_frame_index = user;
        delete c.skipped;
      }
      c.request = found.request ?? null;
    }
  }

  /** The stacks of the first ENRICH_MAX waiters whose frames name no application code; a
   * coroutine that has gone meanwhile keeps what the task said. */
  private async stacks(w: WorkerTasks): Promise<void> {
    const byCo = new Map<number, TaskCoroutine[]>();
    for (const t of w.tasks) {
      const c = waiterOf(t);
      if (!needsFrames(c)) continue;
      const same = byCo.get(c.id);
      if (same) same.push(c);
      else if (byCo.size < ENRICH_MAX) byCo.set(c.id, [c]);
    }
    const ids = [...byCo.keys()];
    const worker = async (): Promise<void> => {
      for (let id = ids.shift(); id !== undefined; id = ids.shift()) {
        let st: Lua.GetStackResult;
        try {
          st = await this.client.call(w.pid, 'Lua.getStack', { coroutine: id });
        } catch {
          continue;
        }
        const frames = list<Lua.StackFrame>(st.frames).map(brief);
        const user = userFrameIndex(frames, this.rule);
        for (const c of byCo.get(id)!) {
          if (frames.length) {
            c.frames = frames;
            c.top_frame_index = user >= 0 ? user : null;
          }
          if (st.request) c.request = st.request;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(ENRICH_PARALLEL, ids.length) }, worker));
  }
}
