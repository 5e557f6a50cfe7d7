// Aligned plain-text tables, shared by CLI commands, the demo and benchmarks. Every cell is
// escaped for the terminal (escape.ts) before the columns are measured: cells hold worker text.
import { termText } from './escape.js';

function isNumeric(cell: string): boolean {
  return /^[-+]?[\d.,]+(%|\s?[a-zµ]+)?$/.test(cell.trim());
}

// Numbers align right, text left; columns are two spaces apart.
export function formatTable(header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map(termText));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells
    .map((c, i) => (isNumeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
    .join('  ')
    .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
