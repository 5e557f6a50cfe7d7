// What `attach` asks the workers, and when. Every tick (the refresh rate) it samples the FFI
// runtimes, the first page of pending tasks (as many per worker as the tasks pane can show, not
// the 10,000 behind them) and the coroutines of a few workers (round robin: a quarter of the
// workers per tick, and none while no pane shows coroutines); the workers' modes every 5 s.
// Each kind has at most one request in flight: a slow answer skips that kind's next turns
// instead of piling requests up. After each tick a Snapshot of the store's state goes into a
// bounded history (the last 60 s, at most so many rows) that a paused screen steps through.
import { performance } from 'node:perf_hooks';
import type { WorkerCoroutines } from '../store/coroutines.js';
import type { QueueState } from '../store/queue.js';
import type { Store } from '../store/store.js';
import { defaultFrameRule } from '../store/frames.js';
import type { WorkerTasks } from '../store/tasks.js';

export interface Snapshot {
  /** 1, 2, … in the order taken. */
  seq: number;
  /** When it was taken (ms, the app's clock). */
  at: number;
  queue: QueueState | undefined;
  tasks: WorkerTasks[];
  coroutines: WorkerCoroutines[];
  /** Hits received so far (the hits shown with this snapshot are those before). */
  hits: number;
}

export type SampleKind = 'workers' | 'queue' | 'tasks' | 'coroutines';

export interface SamplerOptions {
  store: Store;
  now: () => number;
  refreshMs: number;
  /** Tasks to list per worker this tick (what the tasks pane can show, plus a margin). */
  taskWant: () => number;
  /** Whether any pane shows coroutines now. */
  wantCoroutines: () => boolean;
  /** Hits received so far. */
  hits: () => number;
  onSample: (s: Snapshot) => void;
  /** A request that failed as a whole (per-worker errors are in the state). */
  onError: (kind: SampleKind, err: unknown) => void;
  /** No timers: the owner calls tick() (tests, benchmarks that drive the clock). */
  manual?: boolean;
  /** History kept, ms (default 60 s). */
  windowMs?: number;
  /** Task and coroutine rows the history may hold (default 60,000: each one stays on the heap
   * for the whole window, and the collector walks them all). */
  maxRows?: number;
}

const WORKERS_EVERY_MS = 5_000;
/** Workers whose coroutines a tick walks: this fraction of them, at least one. */
const COROUTINE_SHARE = 4;

interface Kept { snap: Snapshot; rows: number }

/** The last `windowMs` of snapshots, at most `maxRows` task and coroutine rows in all. A worker's
 * rows shared by consecutive snapshots (not sampled again) are counted once. */
export class History {
  private items: Kept[] = [];
  private rows = 0;
  /** Snapshots let go early to stay within maxRows. */
  dropped = 0;

  constructor(private readonly windowMs: number, private readonly maxRows: number) {}

  get length(): number {
    return this.items.length;
  }

  get rowsHeld(): number {
    return this.rows;
  }

  at(i: number): Snapshot | undefined {
    return this.items[i]?.snap;
  }

  get latest(): Snapshot | undefined {
    return this.items[this.items.length - 1]?.snap;
  }

  /** Index of the snapshot with this seq, or -1. */
  indexOf(seq: number): number {
    const first = this.items[0]?.snap.seq ?? 0;
    const i = seq - first;
    return this.items[i]?.snap.seq === seq ? i : this.items.findIndex((k) => k.snap.seq === seq);
  }

  push(snap: Snapshot): void {
    const prev = this.latest;
    const rows = fresh(snap.tasks, prev?.tasks) + fresh(snap.coroutines, prev?.coroutines);
    this.items.push({ snap, rows });
    this.rows += rows;
    while (this.items.length > 1 && this.items[0]!.snap.at < snap.at - this.windowMs) this.shift();
    while (this.items.length > 1 && this.rows > this.maxRows) {
      this.shift();
      this.dropped++;
    }
  }

  /** Drop the oldest; rows it shares with the next one become the next one's. */
  private shift(): void {
    const old = this.items.shift()!;
    const next = this.items[0];
    let moved = 0;
    if (next) moved = shared(old.snap.tasks, next.snap.tasks) + shared(old.snap.coroutines, next.snap.coroutines);
    if (next) next.rows += moved;
    this.rows -= old.rows - moved;
  }
}

/** A worker's answer; `newRows` when it was built on the worker's previous answer, whose other
 * rows it holds as the same objects (store/coroutines.ts). */
type PerWorker = { pid: number; newRows?: number } & ({ tasks: unknown[] } | { coroutines: unknown[] });
const rowsOf = (w: PerWorker): number => ('tasks' in w ? w.tasks.length : w.coroutines.length);
const takenOver = (w: PerWorker): number => (w.newRows === undefined ? 0 : Math.max(0, rowsOf(w) - w.newRows));

/** Rows in `list` entries not present (same object) in `prev`. */
function fresh(list: PerWorker[], prev: PerWorker[] | undefined): number {
  const old = new Set(prev ?? []);
  return list.reduce((n, w) => n + (old.has(w) ? 0 : rowsOf(w) - takenOver(w)), 0);
}

/** Rows in entries of `a` that `b` holds too: the same answer, or one built on it. */
function shared(a: PerWorker[], b: PerWorker[]): number {
  const inB = new Set(b);
  const byPid = new Map(b.map((w) => [w.pid, w]));
  return a.reduce((n, w) => {
    if (inB.has(w)) return n + rowsOf(w);
    const next = byPid.get(w.pid);
    return n + (next ? Math.min(rowsOf(w), takenOver(next)) : 0);
  }, 0);
}

export class Sampler {
  readonly history: History;
  /** Ticks run, kinds skipped because their previous request was still out, failures. */
  readonly counts = { ticks: 0, skipped: 0, errors: 0, lastTickMs: 0 };
  private refreshMs: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly busy = new Set<SampleKind>();
  private workersAt = -Infinity;
  private cursor = 0;
  private readonly soon = new Set<number>();
  private seq = 0;
  private stopped = false;

  constructor(private readonly opts: SamplerOptions) {
    this.refreshMs = opts.refreshMs;
    this.history = new History(opts.windowMs ?? 60_000, opts.maxRows ?? 60_000);
  }

  get interval(): number {
    return this.refreshMs;
  }

  /** Sampling on its own timer (not manual, not stopped). */
  get running(): boolean {
    return this.timer !== undefined && !this.stopped;
  }

  /** The workers first (their pids and modes), one tick, then a tick every refreshMs. */
  async start(): Promise<void> {
    this.workersAt = this.opts.now();
    await this.guard('workers', () => this.opts.store.workers.refresh());
    await this.tick();
    this.arm();
  }

  setRefresh(ms: number): void {
    this.refreshMs = ms;
    this.arm();
  }

  /** Walk this worker's coroutines in the next tick (a jump to a coroutine not seen yet). */
  sampleSoon(pid: number): void {
    this.soon.add(pid);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.opts.manual || this.stopped) return;
    this.timer = setInterval(() => void this.tick(), this.refreshMs);
    // stdin keeps a real session alive; a test's or a benchmark's end is not held up by this
    this.timer.unref();
  }

  private guard(kind: SampleKind, fn: () => Promise<unknown>): Promise<void> {
    if (this.busy.has(kind)) {
      this.counts.skipped++;
      return Promise.resolve();
    }
    this.busy.add(kind);
    return fn().then(() => undefined, (err: unknown) => {
      this.counts.errors++;
      if (!this.stopped) this.opts.onError(kind, err);
    }).finally(() => this.busy.delete(kind));
  }

  /** One round of requests; resolves with the snapshot once they all settled. */
  async tick(): Promise<Snapshot | undefined> {
    if (this.stopped) return undefined;
    const t0 = performance.now();
    const { store } = this.opts;
    const jobs: Promise<void>[] = [];
    const now = this.opts.now();
    if (now - this.workersAt >= WORKERS_EVERY_MS) {
      this.workersAt = now;
      jobs.push(this.guard('workers', () => store.workers.refresh()));
    }
    jobs.push(this.guard('queue', () => store.queue.sample()));
    jobs.push(this.guard('tasks', () => store.tasks.load({ want: Math.max(1, this.opts.taskWant()), skip: true })));
    if (this.opts.wantCoroutines() || this.soon.size) jobs.push(this.guard('coroutines', () => this.coroutines()));
    await Promise.all(jobs);
    if (this.stopped) return undefined;
    this.counts.ticks++;
    this.counts.lastTickMs = performance.now() - t0;
    const snap: Snapshot = {
      seq: ++this.seq, at: this.opts.now(), queue: store.queue.state, tasks: store.tasks.state,
      coroutines: store.coroutines.state, hits: this.opts.hits(),
    };
    this.history.push(snap);
    this.opts.onSample(snap);
    return snap;
  }

  /** The workers to ask: attached ones (from the last workers refresh), else those the queue saw. */
  alive(): number[] {
    const { store } = this.opts;
    const known = store.workers.state.filter((w) => w.error === undefined).map((w) => w.pid);
    if (known.length) return known;
    return (store.queue.state?.workers ?? []).filter((w) => !w.error).map((w) => w.pid);
  }

  private coroutines(): Promise<unknown> {
    const alive = this.alive();
    if (alive.length === 0) return Promise.resolve();
    const per = Math.max(1, Math.ceil(alive.length / COROUTINE_SHARE));
    const pick = new Set([...this.soon].filter((p) => alive.includes(p)));
    this.soon.clear();
    for (let n = 0; pick.size < per && n < alive.length; n++) pick.add(alive[(this.cursor + n) % alive.length]!);
    this.cursor = (this.cursor + per) % alive.length;
    // one frame, the first of application code (the agent skips the C function a waiting
    // coroutine yields in and the plumbing above the handler: store/frames.ts's rule)
    return this.opts.store.coroutines.refreshWorkers([...pick], 1, alive, defaultFrameRule());
  }
}
