// Every coroutine of the sampled workers: kind, state, what it waits on, its top frame and the
// request it serves. One letter per sort column (I inverts), `/` filters on kind, state, wait,
// request and function text (`!` inverts). Enter opens the stack; w jumps to the FFI task the
// coroutine waits on. A worker's rows come from its last walk (a few workers are walked per
// tick), so the title says how many workers' walks failed or were cut short by the agent.
import { waitText } from '../../cli/format/coroutines.js';
import { isDead, isNotStarted, stateText, type CoroutineRow, type WorkerCoroutines } from '../../store/coroutines.js';
import type { Key } from '../term.js';
import type { KeyHelp } from '../view.js';
import { shownFrame } from '../../store/frames.js';
import { TablePane, type PaneHost } from './common.js';

/** `key`: coKey(pid, id), made once per row (the table looks rows up by it every sample). */
export interface CoItem extends CoroutineRow { pid: number; key: string }

export const coKey = (pid: number, id: number): string => `${pid}:${id}`;

/** A row of one shape for every coroutine (an object spread made one shape per set of optional
 * fields, which made every later read of a row slow): 2,500 of them per sample. */
function coItem(pid: number, c: CoroutineRow): CoItem {
  return {
    id: c.id, kind: c.kind, state: c.state, wait: c.wait, frames: c.frames, request: c.request,
    top_frame_index: c.top_frame_index, pid, key: coKey(pid, c.id),
  };
}

/** One worker's rows, and those shown unless `a` (dead and not started left out). */
interface WorkerItems { all: CoItem[]; shown: CoItem[] }

/** `/srv/app/x.lua:88 resize`: cut from the left, the line and the function stay. */
const frameText = (f: CoroutineRow['frames'][number] | undefined): string =>
  (f ? `${f.line >= 0 ? `${f.source}:${f.line}` : f.source} ${f.function || '?'}` : '-');

/** The frame to show: the first of application code (store/frames.ts: the sampler asks the
 * agent to start there), else the first Lua one, else the top one. */
export { shownFrame } from '../../store/frames.js';

const requestText = (r: CoroutineRow['request']): string => (r ? `${r.method} ${r.uri}` : '');

export class CoroutinesPane extends TablePane<CoItem> {
  private errors: string[] = [];
  private truncated = 0;
  /** Dead threads lua-nginx-module keeps for reuse and timers not fired yet are hidden (the
   * CLI's coroutines does the same) until `a` shows them. */
  private showAll = false;
  private hidden = 0;
  private lastWorkers: WorkerCoroutines[] = [];
  /** Sources seen in frames (the command line completes file names from them). */
  readonly sources = new Set<string>();
  /** The rows of the workers shown now, by their answer (only these: the history holds the
   * older answers, not their rows). */
  private itemsOf = new Map<WorkerCoroutines, WorkerItems>();
  /** The item made for a row: a worker's next answer is built on its last (store/coroutines.ts
   * refreshWorkers) and hands in the rows that did not change as the same objects. */
  private itemOf = new WeakMap<CoroutineRow, CoItem>();

  constructor(host: PaneHost) {
    super(host, {
      key: (r) => r.key,
      sort: { column: 'pid' },
      holdOrderMs: 3_000,
      flashMs: 1_500,
      // a row is a sample's answer for one coroutine: its cells read nothing else
      cellsKey: () => '',
      empty: () => (this.hidden ? `no live coroutines; ${this.hidden} dead or not started (a shows them)`
        : this.lastWorkers.length ? 'no coroutines' : 'no coroutines sampled yet'),
      rowRole: (r) => (r.state === 'dead' ? 'dim' : undefined),
      filterText: (r) => `${r.kind} ${stateText(r)} ${waitText(r.wait)} ${requestText(r.request)} ${r.frames.map(frameText).join(' ')} ${r.pid} ${r.id}`,
      onActivate: (r) => host.openStack(r.pid, r.id, 'cos'),
      columns: [
        { id: 'pid', title: 'worker', width: 7, align: 'right', priority: 1, sortKey: 'p', sortValue: (r) => r.pid * 1e9 + r.id, cell: (r) => String(r.pid) },
        { id: 'id', title: 'co', width: 5, align: 'right', priority: 0, sortKey: 'i', sortValue: (r) => r.id, cell: (r) => String(r.id) },
        { id: 'kind', title: 'kind', width: 7, priority: 3, sortKey: 'K', cell: (r) => r.kind },
        { id: 'state', title: 'state', width: 9, priority: 0, sortKey: 's', cell: (r) => stateText(r) },
        { id: 'wait', title: 'waits on', width: 18, minWidth: 10, priority: 1, sortKey: 'W', cell: (r) => (r.wait ? waitText(r.wait) : '') },
        { id: 'frame', title: 'top frame', width: 30, minWidth: 16, flex: true, elide: 'start', priority: 0, sortKey: 'f', cell: (r) => frameText(shownFrame(r.frames)) },
        { id: 'req', title: 'request', width: 22, minWidth: 12, flex: true, maxWidth: 60, priority: 2, sortKey: 'r', cell: (r) => requestText(r.request) },
      ],
    });
  }

  setWorkers(workers: WorkerCoroutines[]): void {
    const rows: CoItem[] = [];
    let hidden = 0;
    const next = new Map<WorkerCoroutines, WorkerItems>();
    for (const w of workers) {
      // a worker not walked again since keeps its answer (the same object): its rows too
      let items = this.itemsOf.get(w);
      if (!items) {
        const all = w.coroutines.map((c) => this.item(w.pid, c));
        items = { all, shown: all.filter((r) => !isDead(r) && !isNotStarted(r)) };
      }
      next.set(w, items);
      const take = this.showAll ? items.all : items.shown;
      for (let i = 0; i < take.length; i++) rows.push(take[i]!);
      hidden += items.all.length - items.shown.length;
    }
    this.itemsOf = next;
    this.lastWorkers = workers;
    this.hidden = this.showAll ? 0 : hidden;
    this.errors = workers.filter((w) => w.error).map((w) => `worker ${w.pid}: ${w.error}`);
    this.truncated = workers.filter((w) => w.truncated).length;
    this.table.setData(rows);
  }

  private item(pid: number, c: CoroutineRow): CoItem {
    let it = this.itemOf.get(c);
    if (it === undefined) {
      it = coItem(pid, c);
      this.itemOf.set(c, it);
      for (const f of c.frames) if (f.line >= 0 && this.sources.size < 2_000) this.sources.add(f.source);
    }
    return it;
  }

  /** The rows of one worker, as sampled (for `stack CO` without a worker). */
  find(id: number): CoItem[] {
    return this.table.visible().filter((r) => r.id === id);
  }

  info(): string {
    const { index, shown, total } = this.table.counts;
    const pos = shown ? `${index + 1}/${shown}` : '0';
    const of = shown !== total ? ` of ${total}` : '';
    const notes = [this.errors.length ? `${this.errors.length} failed` : '', this.truncated ? `${this.truncated} cut short` : '',
      this.hidden ? `${this.hidden} dead/unstarted hidden (a)` : ''].filter(Boolean);
    return `${pos}${of}${notes.length ? ` (${notes.join(', ')})` : ''}`;
  }

  protected override keys(key: Key): boolean {
    if (key === 'a') {
      this.showAll = !this.showAll;
      this.setWorkers(this.lastWorkers);
      this.host.info(this.showAll ? 'showing dead and not-started coroutines too' : 'hiding dead and not-started coroutines');
      return true;
    }
    if (key !== 'w') return false;
    const r = this.table.selected;
    if (!r) return true;
    if (r.wait?.kind === 'ffi' && typeof r.wait.task_id === 'number') this.host.toTask(r.pid, r.wait.task_id);
    else this.host.info(`co ${r.id} does not wait on an FFI task`);
    return true;
  }

  protected override ownHelp(): KeyHelp[] {
    return [{ keys: 'Enter', help: 'stack and locals' }, { keys: 'w', help: 'the FFI task it waits on' },
      { keys: 'a', help: 'show or hide dead and not-started (pending timer) coroutines' }];
  }
}
