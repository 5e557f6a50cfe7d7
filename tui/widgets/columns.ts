// Table columns and how they share a width. At 200 columns every column shows at its preferred
// width and the flexible one takes the rest. As the table narrows, columns less important than
// the flexible one (higher priority number) drop out first; then the flexible one shrinks to its
// minimum; then more columns drop, least important first; then the rest shrink.
import type { Role, Span } from '../style.js';
import type { Align, Elide } from '../text.js';

/** `text` is what sorting and `/` see; `spans`, when given, is what shows: a sparkline, drawn
 * for the width the column got. */
export interface Cell { text: string; role?: Role; spans?: Span[] | ((width: number) => Span[]) }

export interface Column<R> {
  id: string;
  title: string;
  /** Preferred width in cells. */
  width: number;
  /** Never narrower than this while shown (default: width). */
  minWidth?: number;
  /** Numbers right, text left (default left). */
  align?: Align;
  /** Where a cut shows (default end; 'start' for file:line, whose end matters). */
  elide?: Elide;
  /** 0: never dropped; 1, 2, …: dropped in decreasing order as the table narrows (default 1). */
  priority?: number;
  /** Takes the cells left over (several flexible columns share them)… */
  flex?: boolean;
  /** …up to this width (a sparkline gains nothing past its samples). */
  maxWidth?: number;
  /** The text of this column for a row; `role` colours it (thresholds: style.level). */
  cell(row: R): string | Cell;
  /** The letter that sorts by this column (avoid q ? : / e H and the movement keys). */
  sortKey?: string;
  /** What sorting compares (default: the cell text). */
  sortValue?(row: R): number | string;
  /** Sort largest first when first chosen (counts, latencies). */
  descending?: boolean;
}

export interface Fitted<R> { column: Column<R>; width: number }

const minOf = (c: Column<unknown>) => Math.min(c.minWidth ?? c.width, c.width);

/** Which columns show in `width` cells (with `gap` cells between them) and how wide each is. */
export function fitColumns<R>(columns: Column<R>[], width: number, gap = 1): Fitted<R>[] {
  const shown = [...columns];
  const need = (cols: Column<R>[], size: (c: Column<R>) => number) =>
    cols.reduce((n, c) => n + size(c), 0) + gap * Math.max(0, cols.length - 1);

  // The rightmost of the least important droppable columns, if its priority is above `floor`.
  const leastImportant = (floor: number) => {
    let drop = -1;
    shown.forEach((c, i) => {
      const p = c.priority ?? 1;
      if (p > 0 && p > floor && (drop < 0 || p >= (shown[drop]!.priority ?? 1))) drop = i;
    });
    return drop;
  };
  // A flexible column keeps its preferred width while less important columns can make room.
  while (need(shown, (c) => c.width) > width) {
    const flexFloor = Math.min(...shown.filter((c) => c.flex && c.width > minOf(c)).map((c) => c.priority ?? 1));
    const drop = leastImportant(Number.isFinite(flexFloor) ? flexFloor : -1);
    if (drop < 0) break;
    shown.splice(drop, 1);
  }
  // Then drop the least important columns until the minimum widths fit.
  while (need(shown, minOf) > width) {
    const drop = leastImportant(-1);
    if (drop < 0) break;
    shown.splice(drop, 1);
  }

  const widths = shown.map((c) => c.width);
  let excess = need(shown, (c) => c.width) - width;
  // Shrink flexible columns first, then the others from the least important, rightmost first.
  const shrinkOrder = shown
    .map((c, i) => ({ c, i }))
    .sort((a, b) => Number(!!b.c.flex) - Number(!!a.c.flex)
      || (b.c.priority ?? 1) - (a.c.priority ?? 1) || b.i - a.i);
  for (const { c, i } of shrinkOrder) {
    if (excess <= 0) break;
    const take = Math.min(excess, widths[i]! - minOf(c));
    widths[i] = widths[i]! - take;
    excess -= take;
  }
  // Still too wide (every column at its minimum, none droppable): cut from the right.
  for (let i = shown.length - 1; i >= 0 && excess > 0; i--) {
    const take = Math.min(excess, widths[i]!);
    widths[i] = widths[i]! - take;
    excess -= take;
  }

  // Spare cells go to the flexible columns, evenly, up to their maxWidth.
  let spare = -excess;
  for (;;) {
    const open = shown.map((c, i) => (c.flex && widths[i]! < (c.maxWidth ?? Infinity) ? i : -1)).filter((i) => i >= 0);
    if (spare <= 0 || open.length === 0) break;
    const each = Math.max(1, Math.floor(spare / open.length));
    for (const i of open) {
      const give = Math.min(each, spare, (shown[i]!.maxWidth ?? Infinity) - widths[i]!);
      widths[i] = widths[i]! + give;
      spare -= give;
    }
  }
  return shown.map((column, i) => ({ column, width: widths[i]! })).filter((f) => f.width > 0);
}

/** A cell as { text, role }. */
export function cellOf<R>(column: Column<R>, row: R): Cell {
  const c = column.cell(row);
  return typeof c === 'string' ? { text: c } : c;
}
