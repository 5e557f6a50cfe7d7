// The grid, as blessed-contrib's grid does it but for our screen: a header of at most two lines
// (one when collapsed or when the terminal is short), the panes, a status line and a footer.
// Panes stack at 80 columns and split into two columns from 140; `e` gives the focused pane the
// whole body. A pane never gets fewer rows than its minimum: when they cannot all have it the
// panes after the focused one (then before it) leave the screen and the layout says which.
import type { Rect } from './term.js';

export interface PaneSpec {
  id: string;
  /** Share of the spare rows (default 1). */
  weight?: number;
  /** Rows including the title row (default 3: title, column header, one row). */
  minHeight?: number;
  /** Rows it can use (title + content); spare rows beyond this go to the others. */
  want?: number;
  /** Column when side by side (default left). */
  side?: 'left' | 'right';
}

export interface LayoutInput {
  cols: number;
  rows: number;
  panes: PaneSpec[];
  focus: string;
  expanded: boolean;
  /** Header rows wanted (0–2). */
  headerLines: number;
  /** Rows under the panes: status line and footer (default 2). */
  bottomLines?: number;
  /** Columns from which panes go side by side (default 140). */
  sideBySideFrom?: number;
}

export interface Layout {
  mode: 'stacked' | 'columns' | 'expanded';
  header: Rect;
  panes: Map<string, Rect>;
  /** Panes with no room (their ids, in order). */
  hidden: string[];
  /** The column rule when side by side. */
  separator?: Rect;
  status: Rect;
  footer: Rect;
}

interface Share { min: number; weight: number; want?: number }

/**
 * `total` rows shared among items: each its minimum, then the rest in proportion to the weights
 * (largest remainders get the odd rows) up to what each wants, then whatever is still left the
 * same way to all. Assumes the minimums fit.
 */
export function distribute(total: number, items: Share[]): number[] {
  const sizes = items.map((i) => i.min);
  let left = total - sizes.reduce((a, b) => a + b, 0);
  for (const capped of [true, false]) {
    const room = (n: number) => (capped && items[n]!.want !== undefined ? items[n]!.want! - sizes[n]! : Infinity);
    while (left > 0) {
      const open = items.map((_, n) => n).filter((n) => room(n) > 0);
      if (open.length === 0) break;
      const weight = open.reduce((w, n) => w + items[n]!.weight, 0);
      const exact = open.map((n) => Math.min(room(n), (left * items[n]!.weight) / weight));
      const whole = exact.map(Math.floor);
      let given = whole.reduce((a, b) => a + b, 0);
      // The odd rows to the largest remainders (then the heavier, then the earlier pane).
      const byRemainder = open.map((n, k) => ({ n, k, r: exact[k]! - whole[k]! }))
        .filter((e) => e.r > 0)
        .sort((a, b) => b.r - a.r || items[b.n]!.weight - items[a.n]!.weight || a.n - b.n);
      for (const e of byRemainder) {
        if (given >= left) break;
        whole[e.k]!++;
        given++;
      }
      open.forEach((n, k) => { sizes[n] = sizes[n]! + whole[k]!; });
      left -= given;
      if (given === 0) break;
    }
  }
  return sizes;
}

const share = (p: PaneSpec): Share => ({
  min: p.minHeight ?? 3, weight: p.weight ?? 1, ...(p.want !== undefined && { want: Math.max(p.want, p.minHeight ?? 3) }),
});

/** Stack `panes` in `rect`; returns their rects and the ids that did not fit. */
function stack(panes: PaneSpec[], rect: Rect, focus: string): { rects: Map<string, Rect>; hidden: string[] } {
  const shown = [...panes];
  const hidden: string[] = [];
  const fits = () => shown.reduce((n, p) => n + share(p).min, 0) <= rect.height;
  const fi = () => shown.findIndex((p) => p.id === focus);
  while (!fits() && shown.length > 1) {
    // Drop the last pane after the focused one, else the first one before it.
    const f = fi();
    const drop = f < shown.length - 1 ? shown.length - 1 : 0;
    hidden.push(shown.splice(drop, 1)[0]!.id);
  }
  const sizes = fits() ? distribute(rect.height, shown.map(share)) : [rect.height];
  const rects = new Map<string, Rect>();
  let y = rect.y;
  shown.forEach((p, n) => {
    rects.set(p.id, { x: rect.x, y, width: rect.width, height: sizes[n]! });
    y += sizes[n]!;
  });
  return { rects, hidden: panes.map((p) => p.id).filter((id) => hidden.includes(id)) };
}

export function computeLayout(input: LayoutInput): Layout {
  const { cols, rows } = input;
  const bottom = Math.min(input.bottomLines ?? 2, Math.max(0, rows - 1));
  const headerLines = Math.max(0, Math.min(input.headerLines, 2, rows - bottom - 1));
  const header: Rect = { x: 0, y: 0, width: cols, height: headerLines };
  const body: Rect = { x: 0, y: headerLines, width: cols, height: Math.max(0, rows - headerLines - bottom) };
  const status: Rect = { x: 0, y: rows - bottom, width: cols, height: bottom >= 2 ? 1 : 0 };
  const footer: Rect = { x: 0, y: rows - 1, width: cols, height: bottom >= 1 ? 1 : 0 };
  const base = { header, status, footer };

  const focused = input.panes.find((p) => p.id === input.focus) ?? input.panes[0];
  if (input.expanded && focused) {
    return {
      ...base, mode: 'expanded', panes: new Map([[focused.id, body]]),
      hidden: input.panes.map((p) => p.id).filter((id) => id !== focused.id),
    };
  }
  const left = input.panes.filter((p) => (p.side ?? 'left') === 'left');
  const right = input.panes.filter((p) => p.side === 'right');
  if (cols >= (input.sideBySideFrom ?? 140) && left.length > 0 && right.length > 0) {
    const lw = Math.floor((cols - 1) / 2);
    const a = stack(left, { ...body, width: lw }, input.focus);
    const b = stack(right, { ...body, x: lw + 1, width: cols - lw - 1 }, input.focus);
    return {
      ...base, mode: 'columns', panes: new Map([...a.rects, ...b.rects]),
      hidden: [...a.hidden, ...b.hidden], separator: { x: lw, y: body.y, width: 1, height: body.height },
    };
  }
  const s = stack(input.panes, body, input.focus);
  return { ...base, mode: 'stacked', panes: s.rects, hidden: s.hidden };
}
