// `scripts`: one row per worker and loaded chunk (the lines its reachable functions span and how
// many functions the walk reached), then a line per worker that did not answer. Fits the width
// it is given (a long chunk name loses its start: the file name stays).
import type { WorkerScripts } from '../../store/scripts.js';
import { termText } from './escape.js';
import { formatTable, type Column, type TableOptions } from './table.js';

const COLUMNS: Column[] = [
  { title: 'worker', align: 'right' },
  { title: 'chunk', align: 'left', min: 20, elide: 'start' },
  { title: 'lines', align: 'left', priority: 1 },
  { title: 'functions', align: 'right', priority: 2 },
];

const lines = (first?: number, last?: number): string => (first !== undefined && last !== undefined ? `${first}-${last}` : '-');

export function formatScripts(workers: WorkerScripts[], pattern?: string, opts: TableOptions = {}): string {
  const rows = workers.flatMap((w) => w.scripts.map((s) => [String(w.pid), s.source, lines(s.first_line, s.last_line), s.functions === undefined ? '-' : String(s.functions)]));
  const out: string[] = [];
  if (rows.length > 0) out.push(formatTable(COLUMNS, rows, opts));
  else {
    const total = Math.max(0, ...workers.map((w) => w.total));
    out.push(pattern === undefined ? 'no loaded chunks' : termText(`no loaded chunk matches ${pattern} (${total} loaded; \`scripts PID\` lists them)`));
  }
  for (const w of workers) if (w.error !== undefined) out.push(termText(`worker ${w.pid}: ${w.error}`));
  return out.join('\n');
}
