// Runtime stats (as nffi.stats() reports them per worker) as aligned rows, and as --json has them.
import { PHASES, type QueueWorker, type RuntimeRow, type WorkerStats } from '../../store/queue.js';
import { formatTable } from './table.js';

export type { WorkerStats } from '../../store/queue.js';

const HEADER = ['worker', 'runtime', 'depth', 'in flight', 'enqueued', 'completed',
  'timeouts', 'rejected', 'p50 ms', 'p99 ms', 'queue p99', 'service p99', 'wakeup p99'];

function ms(v: number): string {
  if (v === 0) return '-';
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3);
}

export function queueRows(workers: WorkerStats[]): string[][] {
  const sorted = [...workers].sort((a, b) => a.pid - b.pid);
  return sorted.flatMap((w) => w.runtimes.map((r) => [
    String(w.pid), r.name, String(r.depth), String(r.in_flight), String(r.enqueued),
    String(r.completed), String(r.timeouts), String(r.rejected),
    ms(r.latency_ms.total.p50), ms(r.latency_ms.total.p99), ms(r.latency_ms.queue.p99),
    ms(r.latency_ms.service.p99), ms(r.latency_ms.wakeup.p99),
  ]));
}

export function formatQueue(workers: WorkerStats[]): string {
  const rows = queueRows(workers);
  if (rows.length === 0) return '(no nffi runtime started in any worker yet)';
  return formatTable(HEADER, rows);
}

/** A runtime as --json prints it: the counters and the p50/p99 of each latency phase. */
function jsonRuntime(r: RuntimeRow) {
  const lat = Object.fromEntries(PHASES.map((p) => [p, { p50: r.latency_ms[p].p50, p99: r.latency_ms[p].p99 }]));
  return {
    name: r.name, depth: r.depth, in_flight: r.in_flight, enqueued: r.enqueued, completed: r.completed,
    timeouts: r.timeouts, rejected: r.rejected, latency_ms: lat,
  };
}

export function queueJson(workers: QueueWorker[]): { workers: unknown[] } {
  return { workers: workers.map((w) => ({ pid: w.pid, runtimes: w.runtimes.map(jsonRuntime), ...(w.error ? { error: w.error } : {}) })) };
}
