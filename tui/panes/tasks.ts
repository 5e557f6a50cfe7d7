// Pending nffi tasks, oldest first: age, worker, runtime.method, state, the request's first
// bytes and the coroutine waiting on it. Only the first page of each worker's tasks is asked for
// (as many as the pane can show, and more as the selection goes down): the title says how many
// are pending in all. Enter opens the waiting coroutine's stack; w selects that coroutine.
import type { TaskRow, WorkerTasks } from '../../store/tasks.js';
import { fmtCount } from '../format.js';
import type { Key } from '../term.js';
import { latencyLevel } from '../thresholds.js';
import type { KeyHelp } from '../view.js';
import { dur, TablePane, type PaneHost } from './common.js';
import { shownFrame } from './coroutines.js';

export interface TaskItem extends TaskRow { pid: number }

export const taskKey = (pid: number, id: number): string => `${pid}:${id}`;

const frameText = (f: { function: string; source: string; line: number } | undefined): string =>
  (f ? `${f.line >= 0 ? `${f.source}:${f.line}` : f.source} ${f.function || '?'}` : '');

export class TasksPane extends TablePane<TaskItem> {
  private total = 0;
  private listed = 0;
  private errors: string[] = [];

  constructor(host: PaneHost) {
    super(host, {
      key: (r) => taskKey(r.pid, r.id),
      sort: { column: 'age', descending: true },
      holdOrderMs: 3_000,
      flashMs: 1_500,
      empty: 'no pending tasks',
      filterText: (r) => `${r.runtime}.${r.method} ${r.state} ${r.req_preview} ${r.pid} ${r.id} ${r.coroutine ? `co ${r.coroutine.id} ${r.coroutine.frames.map(frameText).join(' ')}` : ''}${r.coroutine?.request ? ` ${r.coroutine.request.method} ${r.coroutine.request.uri}` : ''}`,
      onActivate: (r) => {
        if (r.coroutine) host.openStack(r.pid, r.coroutine.id, 'tasks');
        else host.info(`task ${r.id}: no waiting coroutine is known`);
      },
      columns: [
        { id: 'age', title: 'age', width: 6, align: 'right', priority: 0, sortKey: 'a', descending: true,
          // by when it was enqueued (one clock for every worker): ages taken at different moments
          // in different workers' answers reordered tasks by tens of rows each sample
          sortValue: (r) => (r.enqueued_ms !== undefined ? -r.enqueued_ms : r.age_ms ?? -1),
          cell: (r) => (r.age_ms === null || r.age_ms === undefined ? { text: '-', role: 'dim' } : { text: dur(host, r.age_ms, 6), role: latencyLevel(r.age_ms, host.thresholds) }) },
        { id: 'pid', title: 'worker', width: 7, align: 'right', priority: 2, sortKey: 'p', sortValue: (r) => r.pid, cell: (r) => String(r.pid) },
        { id: 'id', title: 'task', width: 6, align: 'right', priority: 1, sortKey: 'i', sortValue: (r) => r.id, cell: (r) => String(r.id) },
        { id: 'rt', title: 'runtime.method', width: 16, minWidth: 10, priority: 0, sortKey: 'n', cell: (r) => `${r.runtime}.${r.method}` },
        { id: 'state', title: 'state', width: 9, priority: 3, sortKey: 's', cell: (r) => r.state },
        { id: 'co', title: 'co', width: 5, align: 'right', priority: 2, cell: (r) => (r.coroutine ? String(r.coroutine.id) : '-') },
        { id: 'req', title: 'request', width: 24, minWidth: 10, flex: true, priority: 1,
          cell: (r) => r.req_preview + (r.req_len > r.req_preview.length ? host.theme.glyphs.ellipsis : '') },
        { id: 'http', title: 'for request', width: 22, minWidth: 12, maxWidth: 48, priority: 3, sortKey: 'h',
          cell: (r) => (r.coroutine?.request ? `${r.coroutine.request.method} ${r.coroutine.request.uri}` : '') },
        { id: 'at', title: 'waiting at', width: 28, minWidth: 14, elide: 'start', priority: 4, cell: (r) => frameText(shownFrame(r.coroutine?.frames ?? [])) },
      ],
    });
  }

  setWorkers(workers: WorkerTasks[]): void {
    const rows: TaskItem[] = [];
    for (const w of workers) for (const t of w.tasks) rows.push({ ...t, pid: w.pid });
    this.total = workers.reduce((n, w) => n + (w.error ? 0 : w.total), 0);
    this.listed = rows.length;
    this.errors = workers.filter((w) => w.error).map((w) => `worker ${w.pid}: ${w.error}`);
    this.table.setData(rows);
  }

  /** Tasks pending but not listed (past the page asked for). */
  get unlisted(): number {
    return Math.max(0, this.total - this.listed);
  }

  info(): string {
    const err = this.errors.length ? ` (${this.errors.length} worker${this.errors.length > 1 ? 's' : ''} failed)` : '';
    const of = this.total > this.listed ? `${fmtCount(this.listed)} of ${fmtCount(this.total)}` : fmtCount(this.total);
    return `${of} pending${err}`;
  }

  protected override keys(key: Key): boolean {
    if (key !== 'w') return false;
    const r = this.table.selected;
    if (!r) return true;
    if (r.coroutine) this.host.toCoroutine(r.pid, r.coroutine.id);
    else this.host.info(`task ${r.id}: no waiting coroutine is known`);
    return true;
  }

  protected override ownHelp(): KeyHelp[] {
    return [{ keys: 'Enter', help: 'stack of the waiting coroutine' }, { keys: 'w', help: 'select the waiting coroutine' }];
  }
}
