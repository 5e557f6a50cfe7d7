// Aligned plain-text tables, shared by CLI commands, the demo and benchmarks. Every cell is
// escaped for the terminal (escape.ts) before the columns are measured: cells hold worker text.
//
// Given a width (the terminal's, or 80 when piped; tableOptions below), a table fits it: first
// the cells of columns that may be cut (a `min` width) are cut, longest first, with an ellipsis
// (at the end, or at the start for paths: the file name and line stay); when that is not
// enough, the columns of the lowest priority (the highest number) are left out, and cutting is
// tried again. Priority 0 columns always stay. Without a width (benchmarks, --wide) every
// column is shown whole.
//
// Colour (tableOptions: a TTY, NO_COLOR unset, TERM not dumb) comes from a column's `style`;
// the SGR sequences wrap the cell's text, not its padding. writeStyled (escape.ts) prints it.
import { termText } from './escape.js';

export type Style = 'red' | 'yellow' | 'green' | 'cyan' | 'dim' | 'bold';

export interface Column {
  title: string;
  /** 'left': numbers too; default: numbers right, other cells (`-`) left. */
  align?: 'left' | 'right';
  /** 0 (default): always shown; higher numbers are left out first when the width is short. */
  priority?: number;
  /** The column may be cut down to this width (never below its title's); default: never cut. */
  min?: number;
  /** Where a cut cell loses its text: 'end' (default) or 'start' (paths). */
  elide?: 'end' | 'start';
  /** A shorter form of a cell that does not fit its column, tried before the ellipsis
   * (`ffi (task 19602)` → `ffi`). */
  compact?: (cell: string) => string;
  /** The colour of a cell (row: its index in `cells`). */
  style?: (cell: string, row: number) => Style | undefined;
}

export interface TableOptions {
  /** Fit this many columns; undefined: no limit. */
  width?: number;
  /** SGR colours from the columns' styles. */
  color?: boolean;
}

const SGR: Record<Style, string> = { red: '31', yellow: '33', green: '32', cyan: '36', dim: '2', bold: '1' };

/** `text` in colour `style` (SGR), reset after. */
export const paint = (text: string, style: Style | undefined): string => (style && text ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text);

// East Asian wide and fullwidth characters take two cells, combining marks none.
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;
const ZERO = /[\p{Mn}\p{Me}]/u;

/** Terminal cells `s` takes (after termText: no control characters left). */
export function cellWidth(s: string): number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(s)) return s.length;
  let w = 0;
  for (const ch of s) w += ZERO.test(ch) ? 0 : WIDE.test(ch) ? 2 : 1;
  return w;
}

/** `s` cut to `width` cells with an ellipsis at the end (or the start). */
export function ellipsize(s: string, width: number, where: 'end' | 'start' = 'end'): string {
  if (cellWidth(s) <= width) return s;
  if (width <= 0) return '';
  const chars = [...s];
  if (where === 'start') chars.reverse();
  let out = '';
  let w = 0;
  for (const ch of chars) {
    const cw = cellWidth(ch);
    if (w + cw > width - 1) break;
    out = where === 'start' ? ch + out : out + ch;
    w += cw;
  }
  return where === 'start' ? `…${out}` : `${out}…`;
}

function isNumeric(cell: string): boolean {
  return /^[-+]?[\d.,]+(%|\s?[a-zµ]+|\/s)?$/.test(cell.trim());
}

const padTo = (s: string, width: number, right: boolean): string => {
  const gap = ' '.repeat(Math.max(0, width - cellWidth(s)));
  return right ? gap + s : s + gap;
};

interface Plan { shown: number[]; widths: number[] }

const total = (plan: Plan): number => plan.shown.reduce((sum, i) => sum + plan.widths[i]!, 0) + 2 * Math.max(0, plan.shown.length - 1);

/** Cut the cuttable columns of `shown`, widest first, until the table fits (or none can give). */
function cut(cols: Column[], natural: number[], compactW: (number | undefined)[], shown: number[], width: number): Plan {
  const widths = [...natural];
  const plan = { shown, widths };
  const floor = (i: number) => Math.max(cols[i]!.title.length, cols[i]!.min ?? Infinity);
  let excess = total(plan) - width;
  // a column of lower priority with a short form goes to it first (`ffi` says more than
  // `ffi (task 1…`); a priority-0 one is cut like the others and its cells that do not fit
  // take the short form then
  for (const i of shown.filter((k) => (cols[k]!.priority ?? 0) > 0)) {
    if (excess <= 0) break;
    const c = compactW[i];
    if (c !== undefined && c < widths[i]!) widths[i] = Math.max(c, cols[i]!.title.length);
    excess = total(plan) - width;
  }
  const jumped = new Set<number>();
  while (excess > 0) {
    let widest = -1;
    for (const i of shown) if (widths[i]! > floor(i) && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    if (widest < 0) break;
    const c = compactW[widest];
    if (c !== undefined && c < widths[widest]! && !jumped.has(widest)) {
      // cut at all, its cells take the short form: straight to its width
      jumped.add(widest);
      widths[widest] = Math.max(c, cols[widest]!.title.length);
    } else {
      const second = Math.max(0, ...shown.filter((i) => i !== widest && widths[i]! > floor(i)).map((i) => widths[i]!));
      widths[widest] = widths[widest]! - Math.max(1, Math.min(excess, widths[widest]! - Math.max(floor(widest), second)));
    }
    excess = total(plan) - width;
  }
  // what a jump to a short form left over goes back to the other cut columns
  for (const i of shown) {
    if (excess >= 0) break;
    if (jumped.has(i) || widths[i]! >= natural[i]!) continue;
    const back = Math.min(-excess, natural[i]! - widths[i]!);
    widths[i] = widths[i]! + back;
    excess += back;
  }
  return plan;
}

/** Which columns to show and how wide, for `width` cells. */
function planFor(cols: Column[], natural: number[], width: number | undefined, compactW: (number | undefined)[] = []): Plan {
  let shown = cols.map((_, i) => i);
  if (width === undefined || total({ shown, widths: natural }) <= width) return { shown, widths: natural };
  const levels = [...new Set(cols.map((c) => c.priority ?? 0))].filter((p) => p > 0).sort((a, b) => b - a);
  for (;;) {
    const plan = cut(cols, natural, compactW, shown, width);
    if (total(plan) <= width) return plan;
    const level = levels.shift();
    if (level === undefined) return plan;
    shown = shown.filter((i) => (cols[i]!.priority ?? 0) !== level);
  }
}

const columnOf = (h: string | Column): Column => (typeof h === 'string' ? { title: h } : h);

/**
 * Numbers align right, text left; columns are two spaces apart. `header`: titles, or columns
 * that say how they may be cut, left out or coloured when `opts.width` is short.
 */
export function formatTable(header: (string | Column)[], cells: string[][], opts: TableOptions = {}): string {
  const cols = header.map(columnOf);
  const rows = cells.map((r) => cols.map((_, i) => termText(r[i] ?? '')));
  const natural = cols.map((c, i) => Math.max(cellWidth(c.title), ...rows.map((r) => cellWidth(r[i]!))));
  // a number aligns right (unless its column says left), any other cell left: `-` for none too
  const right = (i: number, text: string): boolean => cols[i]!.align !== 'left' && isNumeric(text);
  const compactW = cols.map((c) => (c.compact ? Math.max(0, ...rows.map((r) => cellWidth(termText(c.compact!(r[cols.indexOf(c)]!))))) : undefined));
  const plan = planFor(cols, natural, opts.width, compactW);
  const line = (texts: string[], row: number | undefined) => plan.shown
    .map((i, k) => {
      const w = plan.widths[i]!;
      const col = cols[i]!;
      const whole = texts[i]!;
      const text = ellipsize(row !== undefined && col.compact && cellWidth(whole) > w ? termText(col.compact(whole)) : whole, w, col.elide);
      const style = row !== undefined && opts.color ? col.style?.(cells[row]![i] ?? '', row) : undefined;
      const last = k === plan.shown.length - 1;
      const alignRight = row !== undefined && right(i, whole);
      const padded = last && !alignRight ? text : padTo(text, w, alignRight);
      if (!style) return padded;
      const lead = padded.length - padded.trimStart().length;
      const body = padded.trim();
      return padded.slice(0, lead) + paint(body, style) + padded.slice(lead + body.length);
    })
    .join('  ')
    .trimEnd();
  return [line(cols.map((c) => c.title), undefined), ...rows.map((r, k) => line(r, k))].join('\n');
}

/** The columns a --wide table would show that this width leaves out (for a footnote). */
export function hiddenColumns(header: (string | Column)[], cells: string[][], width: number | undefined): string[] {
  const cols = header.map(columnOf);
  const rows = cells.map((r) => cols.map((_, i) => termText(r[i] ?? '')));
  const natural = cols.map((c, i) => Math.max(cellWidth(c.title), ...rows.map((r) => cellWidth(r[i]!))));
  const plan = planFor(cols, natural, width);
  return cols.filter((_, i) => !plan.shown.includes(i)).map((c) => c.title);
}

export interface OutputOptions {
  wide?: boolean;
}

export interface Tty {
  isTTY?: boolean;
  columns?: number;
}

/** Colour only on a terminal, and never with NO_COLOR (any value but empty) or TERM=dumb. */
export function colorEnabled(out: Tty = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return out.isTTY === true && env.TERM !== 'dumb';
}

/** The width tables fit: the terminal's; piped, $COLUMNS or 80; --wide: none. */
export function outputWidth(opts: OutputOptions = {}, out: Tty = process.stdout, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (opts.wide) return undefined;
  if (out.isTTY && out.columns && out.columns > 0) return out.columns;
  const cols = Number(env.COLUMNS);
  return Number.isInteger(cols) && cols >= 20 ? cols : 80;
}

/** Width and colour for a command's tables, from its --wide and the terminal. */
export function tableOptions(opts: OutputOptions = {}, out: Tty = process.stdout, env: NodeJS.ProcessEnv = process.env): TableOptions {
  const width = outputWidth(opts, out, env);
  return { ...(width !== undefined ? { width } : {}), color: colorEnabled(out, env) };
}
