// A table of rows that keeps its selection on the same row (by key, not by position) as data
// refreshes, does not reorder itself under a user who is moving, sorts by one letter per column
// with `I` to invert, filters, flashes new rows and, for streams, follows the tail.
import { fitSpans, line, span, type Line, type Role, type Span } from '../style.js';
import { clean, fit } from '../text.js';
import type { Key } from '../term.js';
import type { Filter, Filterable, KeyHelp, PaneView, RenderContext } from '../view.js';
import { cellOf, fitColumns, type Column } from './columns.js';
import { NAV_HELP, navigate, scrollTo } from './nav.js';

// One collator for every comparison: String.prototype.localeCompare builds one per call, which
// costs milliseconds when thousands of coroutines are sorted by a text column.
const collator = new Intl.Collator();

export interface TableOptions<R> {
  columns: Column<R>[];
  /** A row's identity across updates (coroutine id, task id, worker pid + runtime). */
  key(row: R): string;
  /** Initial sort column id; without it rows keep the order given. */
  sort?: { column: string; descending?: boolean };
  /** After the user moves, keep the order this long (ms) even if the data would re-sort it. */
  holdOrderMs?: number;
  /** A row first seen less than this long ago (ms) shows as new (not on the first data). */
  flashMs?: number;
  /** Keep the selection on the last row when it was there (a stream of hits). */
  follow?: boolean;
  /** What `/` matches against (default: every column's text). */
  filterText?(row: R): string;
  /** A role for the whole row (finished tasks dim, …). */
  rowRole?(row: R): Role | undefined;
  /** Shown when there are no rows at all. */
  empty?: string;
  /** The selected row changed (another pane follows it). */
  onSelect?(row: R | undefined): void;
  /** Enter on a row. */
  onActivate?(row: R): void;
  now?: () => number;
}

export class Table<R> implements PaneView, Filterable {
  private rows: R[] = [];
  private byKey = new Map<string, R>();
  private order: string[] = [];
  private selectedKey: string | undefined;
  private index = 0;
  private offset = 0;
  private page = 10;
  private lastMove = -Infinity;
  private firstSeen = new Map<string, number>();
  private fed = false;
  private sortCol: string | undefined;
  private descending: boolean;
  filter: Filter | undefined;
  /** Keys of row objects seen (rows handed in again, unchanged, are not keyed again). */
  private keys = new WeakMap<object, string>();
  /** Sort values of row objects seen, for one column. */
  private sortCache: { column: string; values: WeakMap<object, number | string> } = { column: '', values: new WeakMap() };

  constructor(private readonly opts: TableOptions<R>) {
    this.sortCol = opts.sort?.column;
    this.descending = opts.sort?.descending ?? this.column(this.sortCol)?.descending ?? false;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private keyOf(row: R): string {
    if (typeof row !== 'object' || row === null) return this.opts.key(row);
    let k = this.keys.get(row);
    if (k === undefined) this.keys.set(row, (k = this.opts.key(row)));
    return k;
  }

  private column(id: string | undefined): Column<R> | undefined {
    return this.opts.columns.find((c) => c.id === id);
  }

  /** The new rows (the whole set; the table keeps selection, order and scroll across calls). */
  setData(rows: R[]): void {
    const now = this.now();
    const wasLast = this.order.length === 0 || this.index === this.order.length - 1;
    this.rows = rows;
    // one pass: rows by key, and when each key was first seen (keys gone are forgotten)
    const byKey = new Map<string, R>();
    const firstSeen = new Map<string, number>();
    const fresh = this.fed ? now : -Infinity;
    for (const r of rows) {
      const k = this.keyOf(r);
      byKey.set(k, r);
      firstSeen.set(k, this.firstSeen.get(k) ?? fresh);
    }
    this.byKey = byKey;
    this.firstSeen = firstSeen;
    this.fed = true;
    const holding = now - this.lastMove < (this.opts.holdOrderMs ?? 0);
    this.reorder(holding);
    if (this.opts.follow && wasLast) this.selectIndex(this.order.length - 1);
  }

  setFilter(filter: Filter | undefined): void {
    this.filter = filter;
    this.reorder(false);
  }

  sortBy(columnId: string, descending?: boolean): void {
    this.sortCol = columnId;
    this.descending = descending ?? this.column(columnId)?.descending ?? false;
    this.reorder(false);
  }

  get sort(): { column: string; descending: boolean } | undefined {
    return this.sortCol ? { column: this.sortCol, descending: this.descending } : undefined;
  }

  get selected(): R | undefined {
    return this.selectedKey === undefined ? undefined : this.byKey.get(this.selectedKey);
  }

  /** Rows shown (filtered, sorted) and rows held. */
  get counts(): { shown: number; total: number; index: number } {
    return { shown: this.order.length, total: this.rows.length, index: this.index };
  }

  /** Rows in display order. */
  visible(): R[] {
    return this.order.map((k) => this.byKey.get(k)!);
  }

  /** Select the row with this key; false if it is not shown. */
  select(key: string): boolean {
    const i = this.order.indexOf(key);
    if (i < 0) return false;
    this.selectIndex(i);
    return true;
  }

  private haystack(row: R): string {
    if (this.opts.filterText) return this.opts.filterText(row);
    return this.opts.columns.map((c) => cellOf(c, row).text).join(' ');
  }

  private sorted(keys: string[]): string[] {
    const col = this.column(this.sortCol);
    if (!col) return keys;
    if (this.sortCache.column !== col.id) this.sortCache = { column: col.id, values: new WeakMap() };
    const cache = this.sortCache.values;
    const value = (k: string) => {
      const r = this.byKey.get(k)!;
      if (col.sortValue) return col.sortValue(r);
      if (typeof r !== 'object' || r === null) return cellOf(col, r).text;
      // a row handed in again (the same object) sorts by the text it had (a cell costs more
      // than a lookup; a sort value does not)
      let v = cache.get(r);
      if (v === undefined) cache.set(r, (v = cellOf(col, r).text));
      return v;
    };
    const dir = this.descending ? -1 : 1;
    return keys
      .map((k) => ({ k, v: value(k) }))
      .sort((a, b) => {
        const c = typeof a.v === 'number' && typeof b.v === 'number'
          ? a.v - b.v : collator.compare(String(a.v), String(b.v));
        return c !== 0 ? c * dir : a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
      })
      .map((e) => e.k);
  }

  private reorder(hold: boolean): void {
    const before = this.selectedKey;
    const screenRow = this.index - this.offset;
    const filter = this.filter;
    const rows = filter ? this.rows.filter((r) => filter.test(this.haystack(r))) : this.rows;
    const keys = rows.map((r) => this.keyOf(r));
    if (hold && this.order.length > 0) {
      const present = new Set(keys);
      const kept = this.order.filter((k) => present.has(k));
      const keptSet = new Set(kept);
      this.order = [...kept, ...this.sorted(keys.filter((k) => !keptSet.has(k)))];
    } else {
      this.order = this.sorted(keys);
    }
    // The same row stays selected; if it left, its neighbour (the row now at its place).
    const at = this.selectedKey === undefined ? -1 : this.order.indexOf(this.selectedKey);
    const index = at >= 0 ? at : Math.min(this.index, this.order.length - 1);
    this.index = Math.max(0, index);
    this.selectedKey = this.order[this.index];
    // …and stays on the same screen row when it can.
    this.offset = scrollTo(this.index, this.index - screenRow, this.page, this.order.length);
    if (this.selectedKey !== before) this.opts.onSelect?.(this.selected);
  }

  private selectIndex(i: number): void {
    const before = this.selectedKey;
    this.index = Math.max(0, Math.min(i, this.order.length - 1));
    this.selectedKey = this.order[this.index];
    this.offset = scrollTo(this.index, this.offset, this.page, this.order.length);
    if (this.selectedKey !== before) this.opts.onSelect?.(this.selected);
  }

  handleKey(key: Key): boolean {
    const to = navigate(key, this.index, this.order.length, this.page);
    if (to !== undefined) {
      this.lastMove = this.now();
      this.selectIndex(to);
      return true;
    }
    if (key === 'enter') {
      const r = this.selected;
      if (r !== undefined && this.opts.onActivate) this.opts.onActivate(r);
      return this.opts.onActivate !== undefined;
    }
    if (key === 'I' && this.sortCol) {
      this.descending = !this.descending;
      this.reorder(false);
      return true;
    }
    const col = this.opts.columns.find((c) => c.sortKey === key);
    if (col) {
      this.sortBy(col.id);
      return true;
    }
    return false;
  }

  keyHelp(): KeyHelp[] {
    const sorts = this.opts.columns.filter((c) => c.sortKey)
      .map((c) => `${c.sortKey} ${c.title.toLowerCase()}`);
    const help = [...NAV_HELP];
    if (sorts.length) help.push({ keys: sorts.join(', '), help: 'sort by that column; I inverts' });
    if (this.opts.onActivate) help.push({ keys: 'Enter', help: 'open the selected row' });
    return help;
  }

  render(width: number, height: number, ctx: RenderContext): Line[] {
    if (height <= 0 || width <= 0) return [];
    const g = ctx.theme.glyphs;
    const fitted = fitColumns(this.opts.columns, width - 1);
    const out: Line[] = [];
    const head: Span[] = [span(' ')];
    fitted.forEach(({ column, width: w }, i) => {
      const arrow = column.id === this.sortCol ? (this.descending ? g.down : g.up) : '';
      const title = column.align === 'right' ? arrow + column.title : column.title + arrow;
      head.push(span((i ? ' ' : '') + fit(title, w, column.align, g.ellipsis), 'bold'));
    });
    out.push(line(head));
    this.page = Math.max(1, height - 1);
    this.offset = scrollTo(this.index, this.offset, this.page, this.order.length);
    if (this.order.length === 0) {
      const why = this.rows.length && this.filter ? `no row matches /${this.filter.text}` : this.opts.empty ?? 'nothing yet';
      if (height > 1) out.push(line([span(' '), span(clean(why), 'dim')]));
      return out;
    }
    const end = Math.min(this.order.length, this.offset + this.page);
    for (let i = this.offset; i < end; i++) {
      const key = this.order[i]!;
      const row = this.byKey.get(key)!;
      const selected = i === this.index;
      const fresh = ctx.now - (this.firstSeen.get(key) ?? -Infinity) < (this.opts.flashMs ?? 0);
      const role: Role | undefined = selected ? (ctx.focused ? 'selected' : 'selectedBlur')
        : fresh ? 'new' : this.opts.rowRole?.(row);
      const spans: Span[] = [span(selected ? g.gutter : ' ')];
      fitted.forEach(({ column, width: w }, n) => {
        const c = cellOf(column, row);
        if (n) spans.push(span(' '));
        const shown = typeof c.spans === 'function' ? c.spans(w) : c.spans;
        if (shown) spans.push(...fitSpans(shown, w, column.align === 'right' ? 'right' : 'left'));
        else spans.push(span(fit(clean(c.text), w, column.align, g.ellipsis, column.elide), c.role));
      });
      out.push(line(spans, role));
    }
    return out;
  }
}
