// The nffi runtimes of every worker (FFI.getRuntimes): depth, in flight, counters, latencies;
// from successive samples the rates (enqueued/s, completed/s), and per runtime a bounded
// history of samples for sparklines. watch() samples on an interval until told to stop.
import type { ProbeClient } from '../client/client.js';
import type { FFI } from '../probe/protocol-types.js';
import { list, View } from './view.js';

export const PHASES = ['queue', 'service', 'wakeup', 'total'] as const satisfies (keyof FFI.LatencySummary)[];

/** One runtime of one worker, as nffi.stats() reports it. */
export interface RuntimeRow {
  name: string;
  depth: number;
  in_flight: number;
  enqueued: number;
  completed: number;
  timeouts: number;
  rejected: number;
  latency_ms: FFI.LatencySummary;
  /** Queue capacity (opts.max_queue), when the agent gives it: a full queue is an alarm. */
  max_queue?: number;
  /** How responses wake their waiters (issue 15): eventfd (nginx's event loop) or pump, and why
   * not eventfd; absent from agents before it. */
  wake?: string;
  wake_reason?: string;
  /** Latencies come from 1 task in this many beyond one a millisecond (1: every task). */
  latency_sample_every?: number;
  /** Pollers' spins for the worker's next batch (many calls in flight), and those that lost
   * their CPU: a machine where spinning takes time from the worker reads many lost. */
  spins_in_flight?: number;
  spins_lost?: number;
}

export interface WorkerStats { pid: number; runtimes: RuntimeRow[] }

/** Per second, since the previous sample; null on a runtime's first sample, after a reset, or for a
 * runtime that is not instrumented (it counts nothing). */
export interface Rates { enqueued: number; completed: number }

export interface RuntimeView extends RuntimeRow { rates: Rates | null }
export interface QueueWorker { pid: number; runtimes: RuntimeView[]; error?: string }
/** `at`: when the answers came (ms, the store's clock). */
export interface QueueState { at: number; workers: QueueWorker[] }

export interface HistoryPoint {
  at: number;
  depth: number;
  in_flight: number;
  enqueued_per_s: number | null;
  completed_per_s: number | null;
  /** p99 of the total latency, ms. */
  p99_ms: number;
}

export interface QueueOptions {
  /** Samples kept per runtime; default 120 (two minutes at 1/s). */
  history?: number;
  now?: () => number;
}

export function runtimeRow(r: FFI.RuntimeStats): RuntimeRow {
  return {
    name: r.name, depth: r.depth, in_flight: r.in_flight, enqueued: r.enqueued, completed: r.completed,
    timeouts: r.timeouts, rejected: r.rejected, latency_ms: r.latency_ms,
    ...(typeof r.max_queue === 'number' ? { max_queue: r.max_queue } : {}),
    ...(typeof r.wake === 'string' ? { wake: r.wake } : {}),
    ...(typeof r.wake_reason === 'string' ? { wake_reason: r.wake_reason } : {}),
    ...(typeof r.latency_sample_every === 'number' ? { latency_sample_every: r.latency_sample_every } : {}),
    ...(typeof r.spins_in_flight === 'number' ? { spins_in_flight: r.spins_in_flight, spins_lost: r.spins_lost ?? 0 } : {}),
  };
}

/** Rates between two samples of one runtime. */
export function ratesBetween(prev: { at: number; row: RuntimeRow } | undefined, at: number, row: RuntimeRow): Rates | null {
  // not instrumented (libnffi_noinst, or instrument = false): nothing counted, no rate
  if (!prev || row.latency_sample_every === 0) return null;
  const secs = (at - prev.at) / 1000;
  const enq = row.enqueued - prev.row.enqueued;
  const done = row.completed - prev.row.completed;
  // counters only grow: fewer means the runtime was loaded again
  if (!(secs > 0) || enq < 0 || done < 0) return null;
  return { enqueued: enq / secs, completed: done / secs };
}

const keyOf = (pid: number, name: string): string => `${pid}\u0000${name}`;

export class QueueView extends View<QueueState | undefined> {
  private readonly last = new Map<string, { at: number; row: RuntimeRow }>();
  private readonly series = new Map<string, HistoryPoint[]>();
  private readonly keep: number;
  private readonly now: () => number;

  constructor(private readonly client: ProbeClient, opts: QueueOptions = {}) {
    super(undefined);
    this.keep = Math.max(1, opts.history ?? 120);
    this.now = opts.now ?? Date.now;
  }

  /** Ask every worker once; the rates are against the previous sample. */
  async sample(): Promise<QueueState> {
    const results = await this.client.callAll('FFI.getRuntimes');
    const at = this.now();
    const workers = results.map((r): QueueWorker => ({
      pid: r.pid,
      runtimes: list<FFI.RuntimeStats>(r.result?.runtimes).map((raw) => this.record(r.pid, at, runtimeRow(raw))),
      ...(r.error ? { error: r.error } : {}),
    }));
    this.forget(workers);
    return this.publish({ at, workers }) as QueueState;
  }

  /** The samples kept for one runtime of one worker, oldest first. */
  history(pid: number, name: string): HistoryPoint[] {
    return [...(this.series.get(keyOf(pid, name)) ?? [])];
  }

  /** Sample now, then every `intervalMs` after the previous sample, until `until` settles. A
   * sample that fails ends it with that error. */
  async watch(intervalMs: number, until: Promise<unknown>): Promise<void> {
    let stopped = false;
    const stop = until.then(() => { stopped = true; }, () => { stopped = true; });
    while (!stopped) {
      await this.sample();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stop, new Promise((r) => (timer = setTimeout(r, intervalMs)))]);
      clearTimeout(timer);
    }
  }

  private record(pid: number, at: number, row: RuntimeRow): RuntimeView {
    const key = keyOf(pid, row.name);
    const rates = ratesBetween(this.last.get(key), at, row);
    this.last.set(key, { at, row });
    const points = this.series.get(key) ?? [];
    points.push({
      at, depth: row.depth, in_flight: row.in_flight,
      enqueued_per_s: rates?.enqueued ?? null, completed_per_s: rates?.completed ?? null, p99_ms: row.latency_ms.total.p99,
    });
    if (points.length > this.keep) points.splice(0, points.length - this.keep);
    this.series.set(key, points);
    return { ...row, rates };
  }

  /** What was not reported takes its history with it: a worker that is no longer there
   * (replaced after a reload), and a runtime its worker answered without (unloaded, or gone
   * with a new configuration) while the worker stays. A worker whose answer failed keeps its
   * own (the failure says nothing about what runs there). */
  private forget(workers: QueueWorker[]): void {
    const reported = new Map<number, Set<string> | undefined>();
    for (const w of workers) reported.set(w.pid, w.error !== undefined ? undefined : new Set(w.runtimes.map((r) => r.name)));
    for (const key of [...this.last.keys()]) {
      const sep = key.indexOf('\u0000');
      const pid = Number(key.slice(0, sep));
      if (reported.has(pid)) {
        const names = reported.get(pid);
        if (names === undefined || names.has(key.slice(sep + 1))) continue;
      }
      this.last.delete(key);
      this.series.delete(key);
    }
  }
}
