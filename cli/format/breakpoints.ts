// The breakpoints of a serve probe as a table: id, location, condition, hits, drops, and how
// many workers are in each state.
import type { ListedBreakpoint } from '../../client/client.js';
import { describeSpec } from './hit.js';
import { formatTable } from './table.js';

function states(b: ListedBreakpoint): string {
  const n = new Map<string, number>();
  for (const w of b.workers) n.set(w.state, (n.get(w.state) ?? 0) + 1);
  return [...n].map(([s, k]) => `${s} ${k}`).join(', ') || '-';
}

export function formatBreakpoints(list: ListedBreakpoint[]): string {
  if (list.length === 0) return 'no breakpoints';
  return formatTable(['id', 'location', 'condition', 'hits', 'drops', 'workers'], list.map((b) => {
    const { location, condition } = describeSpec(b.spec);
    const at = b.line !== undefined && b.line !== b.spec.line ? `${location} (line ${b.line})` : location;
    return [String(b.id), at, condition, String(b.hits), String(b.dropped), states(b)];
  }));
}
