// What the panes of `attach` share: the host they report to (tui/app.ts: drilling into a stack,
// jumping between a coroutine and its task, stepping through paused samples, the status line)
// and TablePane, a table that is a pane: ←/→ step through samples while paused (`,` `.` too),
// the pane's own keys, then the table's (movement, sort letters, I, Enter).
import type { BreakpointEvent } from '../../client/client.js';
import { fmtDuration } from '../format.js';
import type { Line, Theme } from '../style.js';
import type { Key } from '../term.js';
import type { QueueThresholds } from '../thresholds.js';
import type { Filter, Filterable, KeyHelp, PaneView, RenderContext } from '../view.js';
import { Table, type TableOptions } from '../widgets/table.js';

export type PaneId = 'queue' | 'tasks' | 'cos' | 'stack' | 'hits';
export type HitEvent = Extract<BreakpointEvent, { event: 'hit' }>;

export interface PaneHost {
  now(): number;
  readonly theme: Theme;
  /** Clock times in UTC (tests), else local. */
  readonly utc: boolean;
  readonly thresholds: QueueThresholds;
  setThresholds(t: QueueThresholds): void;
  readonly paused: boolean;
  /** Show the sample `delta` steps away; live, a step back pauses first. false: nothing to do. */
  step(delta: number): boolean;
  /** Load the stack (with locals) of coroutine `co` of worker `pid` into the stack pane and
   * focus it; Esc there comes back to `from`. */
  openStack(pid: number, co: number, from: PaneId, frame?: number): void;
  /** Show a hit's snapshot in the stack pane. */
  openHit(hit: HitEvent, from: PaneId): void;
  /** Select the task a coroutine waits on, in the tasks pane. */
  toTask(pid: number, task: number): void;
  /** Select a task's waiting coroutine, in the coroutines pane. */
  toCoroutine(pid: number, co: number): void;
  info(text: string): void;
  error(err: unknown): void;
  /** Something changed outside a key press: draw. */
  update(): void;
}

/** A duration for a cell of `width`, in the terminal's alphabet. */
export const dur = (host: PaneHost, ms: number, width?: number): string =>
  fmtDuration(ms, { unicode: host.theme.unicode, ...(width !== undefined && { width }) });

/** Keys that step through samples: ←/→ in tables, `,`/`.` everywhere (the tree keeps ←/→). */
export function stepKey(host: PaneHost, key: Key, arrows: boolean): boolean {
  if (key === ',' || (arrows && key === 'left')) return host.step(-1);
  if (key === '.' || (arrows && key === 'right')) return host.step(1);
  return false;
}

export const STEP_HELP: KeyHelp = { keys: '←/→ , .', help: 'paused: previous / next sample (← pauses)' };

export abstract class TablePane<R> implements PaneView, Filterable {
  readonly table: Table<R>;

  protected constructor(protected readonly host: PaneHost, opts: TableOptions<R>) {
    this.table = new Table<R>({ now: () => host.now(), ...opts });
  }

  get filter(): Filter | undefined {
    return this.table.filter;
  }

  setFilter(filter: Filter | undefined): void {
    this.table.setFilter(filter);
  }

  /** The pane's own keys, before the table's. */
  protected keys(_key: Key): boolean {
    return false;
  }

  protected ownHelp(): KeyHelp[] {
    return [];
  }

  /** Rows above the table (a summary line); none by default. */
  protected above(_width: number, _ctx: RenderContext): Line[] {
    return [];
  }

  handleKey(key: Key): boolean {
    return stepKey(this.host, key, true) || this.keys(key) || this.table.handleKey(key);
  }

  keyHelp(): KeyHelp[] {
    const own = this.ownHelp();
    const taken = new Set(own.map((k) => k.keys));
    return [...own, ...this.table.keyHelp().filter((k) => !taken.has(k.keys)), STEP_HELP];
  }

  render(width: number, height: number, ctx: RenderContext): Line[] {
    const top = this.above(width, ctx).slice(0, Math.max(0, height - 2));
    return [...top, ...this.table.render(width, height - top.length, ctx)];
  }

  /** Select the row with this key, clearing a filter that hides it; false if it is not there. */
  reveal(key: string): boolean {
    if (this.table.select(key)) return true;
    if (!this.table.filter) return false;
    this.table.setFilter(undefined);
    return this.table.select(key);
  }

  /** Rows the table shows in `height` (for the sampler's page size). */
  get selectedIndex(): number {
    return this.table.counts.index;
  }
}
