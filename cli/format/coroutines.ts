// Coroutines of each worker as one table: id, kind, state, what it waits on, request, top frame.
import type { Lua } from '../../probe/protocol-types.js';
import type { FrameBrief, WorkerCoroutines } from '../../store/coroutines.js';
import { termText } from './escape.js';
import { formatTable } from './table.js';

export type { CoroutineRow, FrameBrief, WorkerCoroutines } from '../../store/coroutines.js';

export function where(f: FrameBrief | undefined): string {
  if (!f) return '-';
  return `${f.function || '?'} ${f.line >= 0 ? `${f.source}:${f.line}` : f.source}`;
}

export function waitText(w: Lua.Wait | null | undefined): string {
  if (!w) return '-';
  const extra = [w.task_id !== undefined ? `task ${w.task_id}` : '', w.detail ?? ''].filter(Boolean).join(' ');
  return extra ? `${w.kind} (${extra})` : w.kind;
}

/** `POST /api/x?y=1`; a long one is cut so the top-frame column stays in view (--json has it whole). */
export function requestText(r: Lua.Request | null | undefined, max = 48): string {
  if (!r) return '-';
  const text = `${r.method} ${r.uri}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const HEADER = ['worker', 'id', 'kind', 'state', 'wait', 'request', 'top frame'];

export function formatCoroutines(workers: WorkerCoroutines[]): string {
  const rows = workers.flatMap((w) => w.coroutines.map((c) => [
    String(w.pid), String(c.id), c.kind, c.state, waitText(c.wait),
    requestText(c.request), where(c.frames[0]),
  ]));
  const errors = workers.filter((w) => w.error).map((w) => termText(`worker ${w.pid}: ${w.error}`));
  const table = rows.length ? formatTable(HEADER, rows) : '(no coroutines)';
  return [table, ...errors].join('\n');
}
