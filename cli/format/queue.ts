// Runtime stats (as nffi.stats() reports them per worker) as aligned rows.
import { formatTable } from './table.js';

export interface Latency { p50: number; p99: number; max: number; count: number }

export interface RuntimeStats {
  name: string;
  depth: number;
  in_flight: number;
  enqueued: number;
  completed: number;
  timeouts: number;
  rejected: number;
  late?: number;
  latency_ms: { queue: Latency; service: Latency; wakeup: Latency; total: Latency };
}

export interface WorkerStats { pid: number; runtimes: RuntimeStats[] }

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
