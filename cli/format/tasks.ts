// Pending nffi tasks as a table (the request each belongs to, the frame its coroutine waits at
// in application code), then the Lua stack of each waiting coroutine from that frame down.
import { userMessage } from '../errors.js';
import { defaultFrameRule, shownFrameIndex, type FrameRule } from '../../store/frames.js';
import type { TaskRow, WorkerTasks } from '../../store/tasks.js';
import { frameText, requestText, shortFrame } from './coroutines.js';
import { termText } from './escape.js';
import { frameLine } from './stack.js';
import { ellipsize, formatTable, type Column, type Style, type TableOptions } from './table.js';

export type { TaskRow, WorkerTasks } from '../../store/tasks.js';

/** Task ages past these (ms) are yellow, red: the TUI's default p99 thresholds. */
export const AGE_WARN_MS = 10;
export const AGE_BAD_MS = 100;

/** `-` when the worker's libnffi keeps no timestamps (NFFI_NO_INSTRUMENT). */
function age(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

function ageStyle(cell: string): Style | undefined {
  const ms = Number(cell);
  if (!Number.isFinite(ms)) return undefined;
  return ms >= AGE_BAD_MS ? 'red' : ms >= AGE_WARN_MS ? 'yellow' : undefined;
}

const stateStyle = (s: string): Style | undefined => (s === 'abandoned' ? 'red' : s === 'ready' || s === 'done' ? 'green' : undefined);

function preview(s: string, width = 40): string {
  const flat = termText(JSON.stringify(s).slice(1, -1));
  return flat.length > width ? flat.slice(0, width - 1) + '…' : flat;
}

/** "worker 42: 1000 of 100000 tasks listed (oldest first); --max N or --all for more" */
function cutShort(w: WorkerTasks): string {
  return `worker ${w.pid}: ${w.tasks.length} of ${w.total} tasks listed (oldest first); --max N or --all for more`;
}

/** The request of a task's coroutine: `?` when it is not known (store/tasks.ts: WALK_MAX). */
function taskRequest(t: TaskRow): string {
  const c = t.coroutine;
  if (!c || t.state === 'abandoned') return '-';
  return c.request === undefined ? '?' : requestText(c.request, Infinity);
}

const COLUMNS: Column[] = [
  { title: 'worker', align: 'right' },
  { title: 'task', align: 'right' },
  { title: 'call', priority: 2, min: 10 },
  { title: 'state', style: stateStyle },
  { title: 'age ms', align: 'right', style: ageStyle },
  { title: 'req bytes', align: 'right', priority: 4 },
  { title: 'co', align: 'right', priority: 3 },
  { title: 'request', priority: 1, min: 14 },
  // the file:line and whole name of the handler (demo_app.lua:41 handlers.slow) before the rest
  { title: 'waiting at', min: 30, compact: shortFrame },
];

export interface TasksFormat extends TableOptions {
  rule?: FrameRule;
  /** Frames per task in the stacks under the table, from the shown one (default: all listed). */
  frames?: number;
}

export function formatTasks(workers: WorkerTasks[], opts: TasksFormat = {}): string {
  const rule = opts.rule ?? defaultFrameRule();
  // an abandoned task's waiter timed out and went on: its frames are not about this task
  const all = workers.flatMap((w) => w.tasks.map((t) => ({
    pid: w.pid, t, at: t.coroutine && t.state !== 'abandoned' ? shownFrameIndex(t.coroutine.frames, rule) : -1,
  })));
  const errors = workers.filter((w) => w.error).map((w) => termText(userMessage(`worker ${w.pid}: ${w.error}`)));
  const cut = workers.filter((w) => w.truncated).map(cutShort);
  if (all.length === 0) return [cut.length ? '(no tasks listed)' : '(no pending tasks)', ...cut, ...errors].join('\n');
  const rows = all.map(({ pid, t, at }) => [
    String(pid), String(t.id), `${t.runtime}.${t.method}`, t.state, age(t.age_ms), String(t.req_len),
    t.coroutine ? String(t.coroutine.id) : '-', taskRequest(t),
    at >= 0 ? frameText(t.coroutine!.frames[at]) : t.state === 'abandoned' ? '(timed out)' : '-',
  ]);
  const n = opts.frames ?? Infinity;
  const stacks = all.filter(({ at }) => at >= 0).flatMap(({ pid, t, at }) => {
    const c = t.coroutine!;
    const skipped = c.skipped ?? 0;
    const hidden = skipped + at;
    const names = at > 0 ? `: ${termText(c.frames.slice(0, at).map((f) => f.function || '?').join(' < '))}${skipped ? ' …' : ''}` : '';
    const above = hidden > 0 ? [`  (${hidden} frame${hidden === 1 ? '' : 's'} of plumbing above${names})`] : [];
    const fit = (l: string) => ellipsize(l, opts.width ?? Infinity);
    return [
      '',
      fit(`task ${t.id} ${termText(`${t.runtime}.${t.method}`)} (worker ${pid}, coroutine ${c.id}) req "${preview(t.req_preview)}"`),
      ...(c.request ? [fit(`  request ${termText(requestText(c.request, Infinity))}`)] : []),
      ...above.map(fit),
      ...c.frames.slice(at, at + n).map((f, i) => `  ${frameLine(hidden + i, f)}`),
    ];
  });
  return [formatTable(COLUMNS, rows, opts), ...stacks, ...(cut.length ? ['', ...cut] : []), ...errors].join('\n');
}
