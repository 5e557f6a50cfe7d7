// Runtime stats (as nffi.stats() reports them per worker) as aligned rows, and as --json has them.
// With --watch, the rates since the previous sample beside the totals. Columns are left out by
// priority when the width is short (table.ts): the latency phases first, the pid, runtime,
// depth and p99 never. Depth and p99 turn yellow and red past the TUI's default thresholds.
import { PHASES, type QueueWorker, type RuntimeRow, type RuntimeView, type WorkerStats } from '../../store/queue.js';
import { formatTable, type Column, type Style, type TableOptions } from './table.js';

export type { WorkerStats } from '../../store/queue.js';

/** As `attach` colours them by default (tui/thresholds.ts). */
export const DEPTH_WARN = 100;
export const DEPTH_BAD = 1000;
export const P99_WARN_MS = 10;
export const P99_BAD_MS = 100;

function ms(v: number): string {
  if (v === 0) return '-';
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3);
}

function rate(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

const over = (warn: number, bad: number) => (cell: string): Style | undefined => {
  const v = Number(cell);
  if (!Number.isFinite(v)) return undefined;
  return v >= bad ? 'red' : v >= warn ? 'yellow' : undefined;
};
const nonZero = (style: Style) => (cell: string): Style | undefined => (cell !== '0' && cell !== '-' ? style : undefined);
// A runtime that is not instrumented (libnffi_noinst, or loaded with instrument = false) counts
// none of these: '-', not a 0 that reads as idle.
const counted = (r: RuntimeRow, n: number): string => (r.latency_sample_every === 0 ? '-' : String(n));

interface QueueColumn extends Column {
  cell: (r: RuntimeRow & { rates?: RuntimeView['rates'] }) => string;
  /** Only with rates (--watch). */
  rates?: boolean;
}

const COLUMNS: QueueColumn[] = [
  { title: 'runtime', min: 8, cell: (r) => r.name },
  { title: 'depth', align: 'right', cell: (r) => String(r.depth), style: over(DEPTH_WARN, DEPTH_BAD) },
  { title: 'in flight', align: 'right', priority: 1, cell: (r) => String(r.in_flight) },
  { title: 'enqueued', align: 'right', priority: 2, cell: (r) => counted(r, r.enqueued) },
  { title: 'enq/s', align: 'right', priority: 1, rates: true, cell: (r) => rate(r.rates?.enqueued) },
  { title: 'completed', align: 'right', priority: 2, cell: (r) => counted(r, r.completed) },
  { title: 'done/s', align: 'right', priority: 1, rates: true, cell: (r) => rate(r.rates?.completed) },
  { title: 'timeouts', align: 'right', priority: 3, cell: (r) => counted(r, r.timeouts), style: nonZero('yellow') },
  { title: 'rejected', align: 'right', priority: 4, cell: (r) => counted(r, r.rejected), style: nonZero('red') },
  { title: 'p50 ms', align: 'right', priority: 5, cell: (r) => ms(r.latency_ms.total.p50) },
  { title: 'p99 ms', align: 'right', cell: (r) => ms(r.latency_ms.total.p99), style: over(P99_WARN_MS, P99_BAD_MS) },
  { title: 'queue p99', align: 'right', priority: 6, cell: (r) => ms(r.latency_ms.queue.p99), style: over(P99_WARN_MS, P99_BAD_MS) },
  { title: 'service p99', align: 'right', priority: 6, cell: (r) => ms(r.latency_ms.service.p99), style: over(P99_WARN_MS, P99_BAD_MS) },
  { title: 'wakeup p99', align: 'right', priority: 6, cell: (r) => ms(r.latency_ms.wakeup.p99), style: over(P99_WARN_MS, P99_BAD_MS) },
];

export interface QueueFormat extends TableOptions {
  /** The enq/s and done/s columns (--watch: since the previous sample; `-` on the first). */
  rates?: boolean;
}

function columns(opts: QueueFormat): QueueColumn[] {
  return [{ title: 'worker', align: 'right', cell: () => '' }, ...COLUMNS.filter((c) => !c.rates || opts.rates)];
}

export function queueRows(workers: WorkerStats[], opts: QueueFormat = {}): string[][] {
  const cols = columns(opts);
  const sorted = [...workers].sort((a, b) => a.pid - b.pid);
  return sorted.flatMap((w) => w.runtimes.map((r) => [String(w.pid), ...cols.slice(1).map((c) => c.cell(r))]));
}

export function formatQueue(workers: WorkerStats[], opts: QueueFormat = {}): string {
  const rows = queueRows(workers, opts);
  if (rows.length === 0) return '(no nffi runtime started in any worker yet)';
  return formatTable(columns(opts), rows, opts);
}

/** A runtime as --json prints it: the counters and the p50/p99 of each latency phase; with
 * rates (--watch), enqueued and completed per second since the previous sample (null on the
 * first, after the runtime was loaded again, or for a runtime that is not instrumented). */
function jsonRuntime(r: RuntimeView, rates: boolean) {
  const lat = Object.fromEntries(PHASES.map((p) => [p, { p50: r.latency_ms[p].p50, p99: r.latency_ms[p].p99 }]));
  return {
    name: r.name, depth: r.depth, in_flight: r.in_flight, enqueued: r.enqueued, completed: r.completed,
    timeouts: r.timeouts, rejected: r.rejected, latency_ms: lat,
    ...(r.wake !== undefined ? { wake: r.wake } : {}),
    ...(r.wake_reason !== undefined ? { wake_reason: r.wake_reason } : {}),
    ...(r.latency_sample_every !== undefined ? { latency_sample_every: r.latency_sample_every } : {}),
    ...(r.spins_in_flight !== undefined ? { spins_in_flight: r.spins_in_flight, spins_lost: r.spins_lost ?? 0 } : {}),
    ...(rates ? { rates: r.rates ? { enqueued_per_s: r.rates.enqueued, completed_per_s: r.rates.completed } : null } : {}),
  };
}

export function queueJson(workers: QueueWorker[], opts: { rates?: boolean } = {}): { workers: unknown[] } {
  return {
    workers: workers.map((w) => ({
      pid: w.pid, runtimes: w.runtimes.map((r) => jsonRuntime(r, opts.rates === true)), ...(w.error ? { error: w.error } : {}),
    })),
  };
}
