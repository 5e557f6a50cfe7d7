// The breakpoints of a serve probe as a table: id, location, condition, hits, drops, and how
// many workers are in each state.
import type { ListedBreakpoint } from '../../client/client.js';
import { describeSpec } from './hit.js';
import { formatTable, type Column, type TableOptions } from './table.js';

function states(b: ListedBreakpoint): string {
  const n = new Map<string, number>();
  for (const w of b.workers) n.set(w.state, (n.get(w.state) ?? 0) + 1);
  return [...n].map(([s, k]) => `${s} ${k}`).join(', ') || '-';
}

const COLUMNS: Column[] = [
  { title: 'id', align: 'right' },
  { title: 'location', min: 20, elide: 'start' },
  { title: 'condition', min: 12 },
  { title: 'hits', align: 'right' },
  { title: 'drops', align: 'right', priority: 1, style: (c) => (c !== '0' ? 'yellow' : undefined) },
  { title: 'workers', min: 10, style: (c) => (/error|refused|failed/.test(c) ? 'red' : undefined) },
];

export function formatBreakpoints(list: ListedBreakpoint[], opts: TableOptions = {}): string {
  if (list.length === 0) return 'no breakpoints';
  return formatTable(COLUMNS, list.map((b) => {
    const { location, condition } = describeSpec(b.spec);
    const at = b.line !== undefined && b.line !== b.spec.line ? `${location} (line ${b.line})` : location;
    return [String(b.id), at, condition, String(b.hits), String(b.dropped), states(b)];
  }), opts);
}
