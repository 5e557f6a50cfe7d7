// The FFI queue monitor: one row per runtime per worker, or per runtime over all workers (`a`):
// depth, in flight, enqueued/s and completed/s, timeouts, rejects, p50/p99 of the queue,
// service, wake-up and total latencies, and sparklines of depth and throughput over the last
// minute. Lower-priority columns leave first as the pane narrows. Depth and latency cells turn
// yellow and red past the thresholds ([ ] halve/double the depth ones, { } the latency ones);
// timeouts and rejects turn red while they rise.
import type { HistoryPoint, RuntimeView } from '../../store/queue.js';
import type { FFI } from '../../probe/protocol-types.js';
import { fmtCount, fmtRate } from '../format.js';
import type { Snapshot } from '../sampler.js';
import type { Key } from '../term.js';
import { depthLevel, depthLimits, describe, latencyLevel, scaled } from '../thresholds.js';
import type { KeyHelp } from '../view.js';
import { sparkSpans } from '../widgets/charts.js';
import type { Cell, Column } from '../widgets/columns.js';
import { dur, TablePane, type PaneHost } from './common.js';

type Phase = keyof FFI.LatencySummary;

export interface QueueRow {
  key: string;
  /** null: the runtime over every worker that has it. */
  pid: number | null;
  workers: number;
  name: string;
  depth: number;
  max?: number;
  in_flight: number;
  enqueued: number | null;
  completed: number | null;
  timeouts: number;
  rejected: number;
  /** Since the previous sample. */
  timeoutsRising: boolean;
  rejectedRising: boolean;
  /** Aggregated: the worst worker's. */
  latency: FFI.LatencySummary;
  depthHistory: (number | undefined)[];
  rateHistory: (number | undefined)[];
  /** Latencies from 1 task in this many beyond one a millisecond (0: not said, or not instrumented). */
  sampleEvery: number;
  /** Not instrumented (libnffi_noinst, or loaded with instrument = false): timeouts and rejected
   * are not counted, so they show '-', not a 0 that reads as none. */
  uncounted?: boolean;
}

/** Past samples of one runtime, as the sparklines take them. */
export type HistoryOf = (pid: number, name: string) => HistoryPoint[];

const WINDOW_MS = 60_000;

function inWindow(points: HistoryPoint[], at: number): HistoryPoint[] {
  return points.filter((p) => p.at <= at && p.at > at - WINDOW_MS);
}

/** Per-worker rows of a snapshot, rising counters against `prev`. */
export function queueRows(snap: Snapshot, prev: Snapshot | undefined, history: HistoryOf): QueueRow[] {
  const before = new Map<string, RuntimeView>();
  for (const w of prev?.queue?.workers ?? []) for (const r of w.runtimes) before.set(`${w.pid}/${r.name}`, r);
  const rows: QueueRow[] = [];
  for (const w of snap.queue?.workers ?? []) {
    for (const r of w.runtimes) {
      const key = `${w.pid}/${r.name}`;
      const old = before.get(key);
      const points = inWindow(history(w.pid, r.name), snap.at);
      rows.push({
        key, pid: w.pid, workers: 1, name: r.name, depth: r.depth, ...(r.max_queue !== undefined && { max: r.max_queue }),
        in_flight: r.in_flight, enqueued: r.rates?.enqueued ?? null, completed: r.rates?.completed ?? null,
        timeouts: r.timeouts, rejected: r.rejected,
        timeoutsRising: old !== undefined && r.timeouts > old.timeouts,
        rejectedRising: old !== undefined && r.rejected > old.rejected,
        latency: r.latency_ms,
        depthHistory: points.map((p) => p.depth),
        rateHistory: points.map((p) => p.completed_per_s ?? undefined),
        sampleEvery: r.latency_sample_every ?? 0,
        ...(r.latency_sample_every === 0 && { uncounted: true }),
      });
    }
  }
  return rows;
}

const sumOrNull = (xs: (number | null)[]): number | null => (xs.some((x) => x !== null) ? xs.reduce<number>((a, x) => a + (x ?? 0), 0) : null);

function worst(list: FFI.LatencySummary[]): FFI.LatencySummary {
  const out = { ...list[0]! };
  for (const l of list.slice(1)) {
    for (const p of Object.keys(out) as Phase[]) {
      out[p] = { p50: Math.max(out[p].p50, l[p].p50), p99: Math.max(out[p].p99, l[p].p99), max: Math.max(out[p].max, l[p].max), count: out[p].count + l[p].count };
    }
  }
  return out;
}

/** Sum of per-sample values of several series, matched by sample time (one sample asks every
 * worker, so their points share `at`). */
function sumSeries(rows: QueueRow[], pick: (r: QueueRow) => (number | undefined)[]): (number | undefined)[] {
  const n = Math.max(...rows.map((r) => pick(r).length));
  return Array.from({ length: n }, (_, i) => {
    let total: number | undefined;
    for (const r of rows) {
      const s = pick(r);
      const v = s[s.length - n + i];
      if (typeof v === 'number') total = (total ?? 0) + v;
    }
    return total;
  });
}

/** One row per runtime name: counts and rates summed, latencies the worst worker's. */
export function aggregate(rows: QueueRow[]): QueueRow[] {
  const byName = new Map<string, QueueRow[]>();
  for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  return [...byName].map(([name, rs]) => ({
    key: `*/${name}`, pid: null, workers: rs.length, name,
    depth: rs.reduce((a, r) => a + r.depth, 0),
    ...(rs.every((r) => r.max !== undefined) && { max: rs.reduce((a, r) => a + r.max!, 0) }),
    in_flight: rs.reduce((a, r) => a + r.in_flight, 0),
    enqueued: sumOrNull(rs.map((r) => r.enqueued)), completed: sumOrNull(rs.map((r) => r.completed)),
    timeouts: rs.reduce((a, r) => a + r.timeouts, 0), rejected: rs.reduce((a, r) => a + r.rejected, 0),
    timeoutsRising: rs.some((r) => r.timeoutsRising), rejectedRising: rs.some((r) => r.rejectedRising),
    latency: worst(rs.map((r) => r.latency)),
    depthHistory: sumSeries(rs, (r) => r.depthHistory),
    rateHistory: sumSeries(rs, (r) => r.rateHistory),
    sampleEvery: Math.max(...rs.map((r) => r.sampleEvery)),
    ...(rs.every((r) => r.uncounted) && { uncounted: true }),
  }));
}

export class QueuePane extends TablePane<QueueRow> {
  aggregated = false;
  private rows: QueueRow[] = [];

  constructor(host: PaneHost) {
    super(host, {
      key: (r) => r.key,
      empty: 'no nffi runtime loaded in any worker yet',
      columns: columns(host),
    });
  }

  setRows(rows: QueueRow[]): void {
    this.rows = rows;
    this.table.setData(this.aggregated ? aggregate(rows) : rows);
  }

  info(): string {
    const n = this.table.counts.shown;
    // libnffi stamps 1 task in N beyond one a millisecond: the percentiles are estimates then
    const every = Math.max(0, ...this.rows.map((r) => r.sampleEvery));
    return `${n} runtime${n === 1 ? '' : 's'}${this.aggregated ? ', all workers' : ''}${every > 1 ? `, latency 1/${every} sampled` : ''}`;
  }

  protected override keys(key: Key): boolean {
    const t = this.host.thresholds;
    switch (key) {
      case 'a':
        this.aggregated = !this.aggregated;
        this.setRows(this.rows);
        this.host.info(this.aggregated ? 'one row per runtime over all workers (latencies: the worst worker\'s)' : 'one row per runtime per worker');
        return true;
      case '[': case ']': case '{': case '}': {
        const next = scaled(t, key === '[' || key === ']' ? 'depth' : 'p99', key === '[' || key === '{' ? 0.5 : 2);
        this.host.setThresholds(next);
        this.setRows(this.rows);
        this.host.info(`thresholds: ${describe(next, this.host.theme.unicode)}`);
        return true;
      }
      default:
        return false;
    }
  }

  protected override ownHelp(): KeyHelp[] {
    return [
      { keys: 'a', help: 'per worker / all workers' },
      { keys: '[ ]', help: 'depth thresholds ÷2 / ×2' },
      { keys: '{ }', help: 'p99 thresholds ÷2 / ×2' },
    ];
  }
}

function columns(host: PaneHost): Column<QueueRow>[] {
  const t = () => host.thresholds;
  const lat = (phase: Phase, q: 'p50' | 'p99', title: string, width: number, priority: number, sortKey?: string): Column<QueueRow> => ({
    id: `${phase}.${q}`, title, width, align: 'right', priority, descending: true,
    ...(sortKey && { sortKey }), sortValue: (r) => r.latency[phase][q],
    cell: (r): Cell => {
      const v = r.latency[phase][q];
      return r.latency[phase].count === 0 ? { text: '-', role: 'dim' } : { text: dur(host, v, width), role: latencyLevel(v, t()) };
    },
  });
  const rising = (n: number, up: boolean): Cell => ({ text: fmtCount(n, 4), ...(up ? { role: 'bad' as const } : n === 0 ? { role: 'dim' as const } : {}) });
  const rate = (v: number | null, w: number): Cell => (v === null ? { text: '-', role: 'dim' } : { text: fmtRate(v, w) });
  const NOT_COUNTED: Cell = { text: '-', role: 'dim' };
  const spark = (values: (number | undefined)[], w: number, depth: boolean) =>
    sparkSpans(values, { width: w, marks: host.theme.glyphs.spark, ...(depth && { thresholds: depthLimits(t()) }) });
  return [
    { id: 'pid', title: 'worker', width: 7, align: 'right', priority: 1, sortKey: 'p', sortValue: (r) => r.pid ?? 0,
      cell: (r) => (r.pid === null ? `x${r.workers}` : String(r.pid)) },
    { id: 'name', title: 'runtime', width: 9, minWidth: 7, priority: 0, sortKey: 'n', cell: (r) => r.name },
    { id: 'depth', title: 'depth', width: 5, align: 'right', priority: 0, sortKey: 'd', descending: true, sortValue: (r) => r.depth,
      cell: (r) => ({ text: fmtCount(r.depth, 5), role: depthLevel(r.depth, r.max, t()) }) },
    { id: 'fly', title: 'fly', width: 4, align: 'right', priority: 3, sortValue: (r) => r.in_flight, cell: (r) => fmtCount(r.in_flight, 4) },
    { id: 'enq', title: 'enq/s', width: 6, align: 'right', priority: 1, sortKey: 'r', descending: true, sortValue: (r) => r.enqueued ?? -1,
      cell: (r) => rate(r.enqueued, 6) },
    { id: 'done', title: 'done/s', width: 6, align: 'right', priority: 2, sortKey: 'c', descending: true, sortValue: (r) => r.completed ?? -1,
      cell: (r) => rate(r.completed, 6) },
    { id: 'tmo', title: 'tmo', width: 4, align: 'right', priority: 3, sortValue: (r) => (r.uncounted ? -1 : r.timeouts),
      cell: (r) => (r.uncounted ? NOT_COUNTED : rising(r.timeouts, r.timeoutsRising)) },
    { id: 'rej', title: 'rej', width: 4, align: 'right', priority: 3, sortValue: (r) => (r.uncounted ? -1 : r.rejected),
      cell: (r) => (r.uncounted ? NOT_COUNTED : rising(r.rejected, r.rejectedRising)) },
    lat('total', 'p50', 'p50', 6, 4),
    lat('total', 'p99', 'p99', 6, 0, 'l'),
    { id: 'dspark', title: 'depth 60s', width: 12, minWidth: 6, maxWidth: 60, flex: true, priority: 2,
      cell: (r) => ({ text: '', spans: (w: number) => spark(r.depthHistory, w, true) }) },
    lat('queue', 'p99', 'q.p99', 6, 5),
    lat('service', 'p99', 'svc.p99', 7, 5),
    { id: 'rspark', title: 'done/s 60s', width: 12, minWidth: 6, maxWidth: 60, flex: true, priority: 5,
      cell: (r) => ({ text: '', spans: (w: number) => spark(r.rateHistory, w, false) }) },
    lat('wakeup', 'p99', 'wake.p99', 8, 6),
    lat('queue', 'p50', 'q.p50', 6, 7),
    lat('service', 'p50', 'svc.p50', 7, 7),
    lat('wakeup', 'p50', 'wake.p50', 8, 8),
  ];
}
