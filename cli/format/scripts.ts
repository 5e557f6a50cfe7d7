// `scripts`: one row per worker and loaded chunk (the lines its reachable functions span and how
// many functions the walk reached), then a line per worker that did not answer.
import type { WorkerScripts } from '../../store/scripts.js';
import { termText } from './escape.js';
import { formatTable } from './table.js';

const lines = (first?: number, last?: number): string => (first !== undefined && last !== undefined ? `${first}-${last}` : '-');

export function formatScripts(workers: WorkerScripts[], pattern?: string): string {
  const rows = workers.flatMap((w) => w.scripts.map((s) => [String(w.pid), s.source, lines(s.first_line, s.last_line), s.functions === undefined ? '-' : String(s.functions)]));
  const out: string[] = [];
  if (rows.length > 0) out.push(formatTable(['worker', 'chunk', 'lines', 'functions'], rows));
  else {
    const total = Math.max(0, ...workers.map((w) => w.total));
    out.push(pattern === undefined ? 'no loaded chunks' : termText(`no loaded chunk matches ${pattern} (${total} loaded; \`scripts PID\` lists them)`));
  }
  for (const w of workers) if (w.error !== undefined) out.push(termText(`worker ${w.pid}: ${w.error}`));
  return out.join('\n');
}
