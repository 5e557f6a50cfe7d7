// The screen of `attach`: the five panes in the shell, what moves between them (drill into a
// stack, coroutine ↔ task, back out), pausing and stepping through the sampled history, and
// the host the panes and the command line report to. tui/app.ts owns the lifecycle (terminal,
// client, sampler, quitting); this file owns what is shown.
import type { ProbeClient } from '../client/client.js';
import type { Store } from '../store/store.js';
import { completer, runCommand, type CommandHost } from './commands.js';
import { fmtDuration } from './format.js';
import type { Snapshot } from './sampler.js';
import { Shell, type PaneConfig } from './shell.js';
import type { Term } from './term.js';
import { legend, thresholds as makeThresholds, type QueueThresholds } from './thresholds.js';
import type { HitEvent, PaneHost, PaneId } from './panes/common.js';
import { coKey, CoroutinesPane } from './panes/coroutines.js';
import { headerLines, type HeaderModel } from './panes/header.js';
import { HitsPane, type HitRing } from './panes/hits.js';
import { QueuePane, queueRows } from './panes/queue.js';
import { StackPane } from './panes/stack.js';
import { taskKey, TasksPane } from './panes/tasks.js';
import type { LegendEntry } from './widgets/help.js';

export const REFRESH_STEPS = [250, 500, 1_000, 2_000, 5_000];
/** Drilling into a stack on a terminal shorter than this expands the stack pane. */
const AUTO_EXPAND_BELOW_ROWS = 40;

export interface ScreenOptions {
  term: Term;
  pid: number;
  now: () => number;
  utc: boolean;
  refreshMs: number;
  thresholds: QueueThresholds;
  onQuit: () => void;
  onRefresh: (ms: number) => void;
  onDraw: () => void;
}

/** What the screen needs once attached. */
export interface Attached {
  client: ProbeClient;
  store: Store;
  /** The latest hits. */
  hits: HitRing;
  /** Snapshots to step through while paused. */
  history: { length: number; at(i: number): Snapshot | undefined; indexOf(seq: number): number; latest: Snapshot | undefined };
  /** Walk this worker's coroutines next tick. */
  sampleSoon(pid: number): void;
  /** Loaded chunk names, for completion (asked for once, when first wanted). */
  scripts(): string[];
}

export class Screen implements PaneHost {
  readonly shell: Shell;
  readonly queue: QueuePane;
  readonly tasks: TasksPane;
  readonly cos: CoroutinesPane;
  readonly stack: StackPane;
  readonly hits: HitsPane;
  /** Breakpoints set from this screen; quitting removes them. */
  readonly mine = new Set<number>();
  readonly header: HeaderModel;
  private attached: Attached | undefined;
  private viewing: number | undefined;
  private thresholdValues: QueueThresholds;
  private readonly legendEntries: LegendEntry[] = [];
  private pendingCo: { pid: number; co: number } | undefined;
  private autoExpanded = false;

  constructor(private readonly opts: ScreenOptions) {
    this.thresholdValues = opts.thresholds;
    this.header = {
      pid: opts.pid, attach: undefined, workers: [], gone: [], joined: new Map(), refreshMs: opts.refreshMs,
      breakpoints: 0, hitsPerSec: null, dropped: 0, now: opts.now(),
    };
    this.queue = new QueuePane(this);
    this.tasks = new TasksPane(this);
    this.cos = new CoroutinesPane(this);
    this.stack = new StackPane(this, {
      load: (pid, co) => this.need().store.stack.load(pid, co, { locals: true }),
      back: (to) => this.back(to),
    });
    this.hits = new HitsPane(this);
    this.setLegend();
    const cmd = this.commandHost();
    this.shell = new Shell({
      term: opts.term, now: opts.now, onDraw: opts.onDraw, legend: this.legendEntries,
      header: (width, theme) => headerLines({ ...this.header, now: opts.now() }, width, theme),
      panes: this.paneConfigs(),
      onQuit: opts.onQuit,
      onCommand: (text) => runCommand(text, cmd),
      complete: completer(cmd),
      onPause: (paused) => (paused ? this.pauseAt(this.attached?.history.latest) : this.goLive()),
      onRefresh: (step) => {
        const at = REFRESH_STEPS.findIndex((ms) => ms >= this.header.refreshMs);
        const next = REFRESH_STEPS[Math.max(0, Math.min(REFRESH_STEPS.length - 1, (at < 0 ? REFRESH_STEPS.length - 1 : at) - step))]!;
        this.info(this.setRefresh(next));
      },
      statusRight: () => this.statusRight(),
    });
  }

  /**
   * The panes and how they share the rows: the queue gets its rows first (up to 6), the stack
   * and hits panes shrink to their title bar while they have nothing to show, and the focused
   * pane takes three times its share of what is left (at 80×24 the drilled-into stack gets
   * the room; `e` gives it all).
   */
  private paneConfigs(): PaneConfig[] {
    const focused = () => (this.shell as Shell | undefined)?.focused.id;
    const pane = (id: PaneId, title: () => string, view: PaneConfig['view'], info: () => string, weight: number,
      more: { idle?: () => boolean; idleText?: string; min?: () => number; want?: () => number | undefined; side?: 'right' } = {}): PaneConfig => {
      const idle = more.idle ?? (() => false);
      return {
        id, view, ...(more.side && { side: more.side }),
        get title() { return title(); },
        info: () => (idle() ? more.idleText ?? '' : info()),
        get weight() { return focused() === id ? weight * 3 : weight; },
        get minHeight() { return idle() ? 1 : more.min?.() ?? 3; },
        want: () => (idle() ? 1 : more.want?.()),
      };
    };
    const { queue, tasks, cos, stack, hits } = this;
    return [
      pane('queue', () => 'FFI queues', queue, () => queue.info(), 2, {
        min: () => Math.max(3, Math.min(6, queue.table.counts.shown + 2)), want: () => queue.table.counts.shown + 2,
      }),
      pane('tasks', () => 'Tasks', tasks, () => tasks.info(), 2, { want: () => tasks.table.counts.shown + 2 }),
      pane('cos', () => 'Coroutines', cos, () => cos.info(), 3, { want: () => cos.table.counts.shown + 2 }),
      pane('stack', () => stack.title, stack, () => stack.info(), 2, {
        side: 'right', idle: () => stack.current.kind === 'none', idleText: 'Enter on a task, coroutine or hit',
      }),
      pane('hits', () => 'Hits', hits, () => hits.info(), 2, {
        side: 'right', idle: () => hits.idle, idleText: 'none yet: :breakpoint FILE:LINE',
      }),
    ];
  }

  // ---- PaneHost ---------------------------------------------------------------------------

  now(): number {
    return this.opts.now();
  }

  get theme() {
    return this.opts.term.theme;
  }

  get utc(): boolean {
    return this.opts.utc;
  }

  get thresholds(): QueueThresholds {
    return this.thresholdValues;
  }

  setThresholds(t: QueueThresholds): void {
    this.thresholdValues = makeThresholds(t);
    this.setLegend();
    this.update();
  }

  get paused(): boolean {
    return this.shell?.paused ?? false;
  }

  step(delta: number): boolean {
    const h = this.attached?.history;
    if (!h || h.length === 0) return false;
    if (!this.paused) {
      if (delta >= 0) return false;
      this.shell.paused = true;
      this.viewing = h.latest!.seq;
    }
    const at = Math.max(0, h.indexOf(this.viewing ?? -1));
    const to = Math.max(0, Math.min(h.length - 1, at + delta));
    this.show(h.at(to));
    return true;
  }

  openStack(pid: number, co: number, from: PaneId | undefined, frame?: number): void {
    if (!this.attached) return;
    void this.stack.open(pid, co, from, frame);
    this.drillIn();
  }

  openHit(hit: HitEvent, from: PaneId): void {
    this.stack.showHit(hit, from);
    this.drillIn();
  }

  /** Focus the stack pane; on a short terminal it takes the whole body until Esc. */
  private drillIn(): void {
    this.shell.focus('stack');
    if (!this.shell.expanded && this.opts.term.size().rows < AUTO_EXPAND_BELOW_ROWS) {
      this.shell.expanded = true;
      this.autoExpanded = true;
    }
  }

  private back(to: PaneId): void {
    if (this.autoExpanded && this.shell.expanded) this.shell.expanded = false;
    this.autoExpanded = false;
    this.shell.focus(to);
  }

  toTask(pid: number, task: number): void {
    this.shell.focus('tasks');
    if (!this.tasks.reveal(taskKey(pid, task))) this.info(`task ${task} of worker ${pid} is not among the tasks listed (done, or past the first page)`);
  }

  toCoroutine(pid: number, co: number): void {
    this.shell.focus('cos');
    if (this.cos.reveal(coKey(pid, co))) return;
    this.pendingCo = { pid, co };
    this.attached?.sampleSoon(pid);
    this.info(`co ${co} of worker ${pid} is not in the last walk; asking worker ${pid}`);
  }

  info(text: string): void {
    if (text) this.shell.status.info(text);
  }

  error(err: unknown): void {
    this.shell.report(err);
  }

  update(): void {
    this.shell.update();
  }

  // ---- data in ----------------------------------------------------------------------------

  attach(a: Attached): void {
    this.attached = a;
    this.header.attach = a.client.kind;
  }

  private need(): Attached {
    if (!this.attached) throw new Error('not attached yet');
    return this.attached;
  }

  /** A new sample: shown unless the screen is paused (then only the status line moves). */
  sampled(snap: Snapshot): void {
    if (!this.paused) this.show(snap);
    else this.update();
  }

  /** New breakpoint events: the hits pane follows them unless paused. */
  eventsChanged(): void {
    if (this.paused || !this.attached) return;
    this.hits.setHits(this.attached.hits, Infinity, this.attached.store.hits.state.breakpoints);
    this.update();
  }

  private show(snap: Snapshot | undefined): void {
    const a = this.attached;
    if (!snap || !a) return;
    this.viewing = snap.seq;
    const i = a.history.indexOf(snap.seq);
    const prev = i > 0 ? a.history.at(i - 1) : undefined;
    this.queue.setRows(queueRows(snap, prev, (pid, name) => a.store.queue.history(pid, name)));
    this.tasks.setWorkers(snap.tasks);
    this.cos.setWorkers(snap.coroutines);
    this.hits.setHits(a.hits, this.paused ? snap.hits : Infinity, a.store.hits.state.breakpoints);
    if (this.pendingCo && !this.paused && this.cos.reveal(coKey(this.pendingCo.pid, this.pendingCo.co))) this.pendingCo = undefined;
    this.update();
  }

  private pauseAt(snap: Snapshot | undefined): void {
    if (snap) this.viewing = snap.seq;
  }

  private goLive(): void {
    this.viewing = undefined;
    this.show(this.attached?.history.latest);
  }

  setRefresh(ms: number): string {
    if (!(ms >= 50)) throw new Error('refresh: at least 50ms');
    this.header.refreshMs = ms;
    this.opts.onRefresh(ms);
    return `refresh every ${fmtDuration(ms, { unicode: this.theme.unicode })}`;
  }

  private setLegend(): void {
    this.legendEntries.splice(0, this.legendEntries.length, ...legend(this.thresholdValues, this.opts.term.theme.unicode));
  }

  private statusRight(): string {
    const h = this.attached?.history;
    const parts: string[] = [];
    if (this.paused && h && h.length) {
      const i = Math.max(0, h.indexOf(this.viewing ?? -1));
      const back = (h.latest!.at - h.at(i)!.at) / 1000;
      parts.push(`sample ${i + 1}/${h.length}${back > 0 ? ` -${back.toFixed(1)}s` : ''}`);
    }
    if (this.tasks.unlisted) parts.push(`${this.tasks.unlisted} tasks not listed`);
    return parts.join(this.theme.glyphs.sep);
  }

  /** The command line's view of the screen. */
  private commandHost(): CommandHost {
    const self = this;
    return {
      get hits() { return self.need().store.hits; },
      mine: this.mine,
      get thresholds() { return self.thresholds; },
      setThresholds: (t) => this.setThresholds(t),
      setRefresh: (ms) => this.setRefresh(ms),
      openStack: (pid, co, frame) => this.openStack(pid, co, this.shell.focused.id as PaneId, frame),
      workerOf: (co, worker) => this.workerOf(co, worker),
      quit: () => this.opts.onQuit(),
      help: () => { if (!this.shell.help.open) this.shell.help.toggle(); },
      sources: () => [...this.cos.sources, ...(this.attached?.scripts() ?? [])],
      runtimes: () => [...new Set(this.queue.table.visible().map((r) => r.name))],
    };
  }

  private workerOf(co: number, worker?: number): number {
    if (worker !== undefined) return worker;
    const found = [...new Set(this.cos.find(co).map((r) => r.pid))];
    if (found.length === 1) return found[0]!;
    const sel = this.cos.table.selected;
    if (found.length > 1) {
      if (sel && found.includes(sel.pid)) return sel.pid;
      throw new Error(`co ${co} is on workers ${found.join(', ')}: say which, e.g. stack ${co} ${found[0]}`);
    }
    const live = this.header.workers.filter((w) => w.error === undefined);
    if (live.length === 1) return live[0]!.pid;
    throw new Error(`co ${co} is not in the last walk of any worker: say which, e.g. stack ${co} WORKER`);
  }
}
