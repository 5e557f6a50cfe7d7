// Pending nffi tasks as a table, then the Lua stack of each waiting coroutine.
import type { WorkerTasks } from '../../store/tasks.js';
import { where } from './coroutines.js';
import { termText } from './escape.js';
import { frameLine } from './stack.js';
import { formatTable } from './table.js';

export type { TaskRow, WorkerTasks } from '../../store/tasks.js';

const HEADER = ['worker', 'task', 'runtime', 'method', 'state', 'age ms', 'req bytes', 'coroutine', 'waiting at'];

/** `-` when the worker's libnffi keeps no timestamps (NFFI_NO_INSTRUMENT). */
function age(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

function preview(s: string, width = 40): string {
  const flat = termText(JSON.stringify(s).slice(1, -1));
  return flat.length > width ? flat.slice(0, width - 1) + '…' : flat;
}

/** "worker 42: 1000 of 100000 tasks listed (oldest first); --max N or --all for more" */
function cutShort(w: WorkerTasks): string {
  return `worker ${w.pid}: ${w.tasks.length} of ${w.total} tasks listed (oldest first); --max N or --all for more`;
}

export function formatTasks(workers: WorkerTasks[]): string {
  const all = workers.flatMap((w) => w.tasks.map((t) => ({ pid: w.pid, t })));
  const errors = workers.filter((w) => w.error).map((w) => termText(`worker ${w.pid}: ${w.error}`));
  const cut = workers.filter((w) => w.truncated).map(cutShort);
  if (all.length === 0) return [cut.length ? '(no tasks listed)' : '(no pending tasks)', ...cut, ...errors].join('\n');
  const rows = all.map(({ pid, t }) => [
    String(pid), String(t.id), t.runtime, t.method, t.state, age(t.age_ms), String(t.req_len),
    t.coroutine ? String(t.coroutine.id) : '-', where(t.coroutine?.frames[0]),
  ]);
  const stacks = all.filter(({ t }) => t.coroutine && t.coroutine.frames.length).flatMap(({ pid, t }) => [
    '',
    `task ${t.id} (worker ${pid}, ${termText(`${t.runtime}.${t.method}`)}, req "${preview(t.req_preview)}"), coroutine ${t.coroutine!.id}:`,
    ...t.coroutine!.frames.map((f, i) => `  ${frameLine(i, f)}`),
  ]);
  return [formatTable(HEADER, rows), ...stacks, ...(cut.length ? ['', ...cut] : []), ...errors].join('\n');
}
