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
  /** Rows whose cells are a function of the row object alone (and of what this key says, e.g.
   * the clock's zone): each row's cells are fitted once per set of column widths and kept on
   * its entry while the same object is handed in (a stream of hits redraws 1,000 rows a second
   * that never change). */
  cellsKey?(): string;
  /** Shown when there are no rows at all. */
  empty?: string | (() => string);
  /** The selected row changed (another pane follows it). */
  onSelect?(row: R | undefined): void;
  /** Enter on a row. */
  onActivate?(row: R): void;
  now?: () => number;
}

/** A row held, by key: the row now, when its key was first seen, and its sort value. */
interface Entry<R> {
  key: string;
  row: R;
  first: number;
  /** The setData call that last handed it in (older: gone). */
  gen: number;
  /** A new key, or another object than last time under the same key. */
  changed: boolean;
  /** Sort value for column `svCol` (rows are values: the same object sorts the same). */
  sv?: number | string;
  svCol?: string;
  /** Its index in the rows of the setData call that last handed it in. */
  pos?: number;
  /** The row's fitted cells (cellsKey tables) and the widths and key they were fitted for. */
  cells?: Span[];
  cellsSig?: string;
  cellsRow?: R;
}

/** Where a row object keeps its entry in the table that holds it (tables own their rows' entries,
 * and a row handed in again finds its entry without its key being made or looked up). */
const ENTRY = Symbol('table entry');
type Tagged<R> = { [ENTRY]?: { table: object; entry: Entry<R> } };

function sameRows<R>(a: R[], b: R[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Table<R> implements PaneView, Filterable {
  private rows: R[] = [];
  /** Entries in the order the rows were handed in. */
  private entriesIn: Entry<R>[] = [];
  /** Per index of `rows`, the entry that row got (undefined: a key handed in twice). */
  private rowEntries: (Entry<R> | undefined)[] = [];
  private entries = new Map<string, Entry<R>>();
  private gen = 0;
  /** Entries in display order (filtered, sorted or held). */
  private order: Entry<R>[] = [];
  /** `order` is sorted by the current column and direction (a held order is not). */
  private orderSorted = false;
  private selectedKey: string | undefined;
  private index = 0;
  private offset = 0;
  private page = 10;
  private lastMove = -Infinity;
  private fed = false;
  private sortCol: string | undefined;
  private descending: boolean;
  filter: Filter | undefined;

  constructor(private readonly opts: TableOptions<R>) {
    this.sortCol = opts.sort?.column;
    this.descending = opts.sort?.descending ?? this.column(this.sortCol)?.descending ?? false;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private column(id: string | undefined): Column<R> | undefined {
    return this.opts.columns.find((c) => c.id === id);
  }

  /** The entry for row `r` in this call (`gen`), made or updated; undefined for a key handed
   * in twice in one call (the first row stays). */
  private entryOf(r: R, gen: number, fresh: number): Entry<R> | undefined {
    const tagged = typeof r === 'object' && r !== null ? (r as Tagged<R>) : undefined;
    const tag = tagged?.[ENTRY];
    if (tag && tag.table === this && tag.entry.row === r && this.entries.get(tag.entry.key) === tag.entry) {
      const e = tag.entry;
      if (e.gen === gen) return undefined;
      e.changed = false;
      e.gen = gen;
      return e;
    }
    const k = this.opts.key(r);
    let e = this.entries.get(k);
    if (e === undefined) {
      e = { key: k, row: r, first: fresh, gen, changed: true };
      this.entries.set(k, e);
    } else {
      if (e.gen === gen) return undefined;
      e.changed = e.row !== r;
      e.row = r;
      e.gen = gen;
    }
    if (tagged && Object.isExtensible(tagged)) tagged[ENTRY] = { table: this, entry: e };
    return e;
  }

  /**
   * The new rows (the whole set; the table keeps selection, order and scroll across calls).
   * Rows handed in again as the same objects cost one property read each: a front end that
   * re-walks a quarter of 10,000 coroutines per sample re-sorts that quarter and merges it in.
   * The table keeps `rows`: hand in a new array, never the last one changed in place.
   */
  setData(rows: R[]): void {
    // the same objects in the same order (a sample where no walked coroutine moved): nothing to
    // re-key, re-sort or re-filter, unless the order is one held while the user moved (then it
    // is sorted again once the hold is over)
    const held = !this.orderSorted && this.column(this.sortCol) !== undefined;
    if (this.fed && sameRows(rows, this.rows) && (!held || this.now() - this.lastMove < (this.opts.holdOrderMs ?? 0))) {
      this.rows = rows;
      return;
    }
    const now = this.now();
    const wasLast = this.order.length === 0 || this.index === this.order.length - 1;
    const gen = ++this.gen;
    const fresh = this.fed ? now : -Infinity;
    const ins: Entry<R>[] = [];
    // Rows at the index they had last time (or shifted by what was added or removed before
    // them) find their entry from the last call's rows, without a read of the row itself:
    // 10,000 coroutine rows spread over the heap cost a cache miss at each step of the lookup.
    const prevRows = this.rows;
    const prevEntries = this.rowEntries;
    const entries = new Array<Entry<R> | undefined>(rows.length);
    let shift = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const j = i + shift;
      let e = prevRows[j] === r ? prevEntries[j] : undefined;
      if (e !== undefined && e.gen === gen - 1) {
        e.changed = false;
        e.gen = gen;
      } else {
        e = this.entryOf(r, gen, fresh);
        if (e?.pos !== undefined && prevRows[e.pos] === r) shift = e.pos - i;
      }
      if (e) {
        e.pos = i;
        ins.push(e);
      }
      entries[i] = e;
    }
    this.rowEntries = entries;
    // keys gone are forgotten
    if (this.entries.size > ins.length) for (const [k, e] of this.entries) if (e.gen !== gen) this.entries.delete(k);
    this.rows = rows;
    this.entriesIn = ins;
    this.fed = true;
    const holding = now - this.lastMove < (this.opts.holdOrderMs ?? 0);
    this.reorder(holding);
    if (this.opts.follow && wasLast) this.selectIndex(this.order.length - 1);
  }

  setFilter(filter: Filter | undefined): void {
    this.filter = filter;
    this.reorder(false, true);
  }

  sortBy(columnId: string, descending?: boolean): void {
    this.sortCol = columnId;
    this.descending = descending ?? this.column(columnId)?.descending ?? false;
    this.reorder(false, true);
  }

  get sort(): { column: string; descending: boolean } | undefined {
    return this.sortCol ? { column: this.sortCol, descending: this.descending } : undefined;
  }

  get selected(): R | undefined {
    return this.selectedKey === undefined ? undefined : this.entries.get(this.selectedKey)?.row;
  }

  /** Rows shown (filtered, sorted) and rows held. */
  get counts(): { shown: number; total: number; index: number } {
    return { shown: this.order.length, total: this.rows.length, index: this.index };
  }

  /** Rows in display order. */
  visible(): R[] {
    return this.order.map((e) => e.row);
  }

  private indexOfKey(key: string | undefined): number {
    if (key === undefined) return -1;
    const e = this.entries.get(key);
    return e ? this.order.indexOf(e) : -1;
  }

  /** Select the row with this key; false if it is not shown. */
  select(key: string): boolean {
    const i = this.indexOfKey(key);
    if (i < 0) return false;
    this.selectIndex(i);
    return true;
  }

  private haystack(row: R): string {
    if (this.opts.filterText) return this.opts.filterText(row);
    return this.opts.columns.map((c) => cellOf(c, row).text).join(' ');
  }

  /** The entry's sort value for `col`, computed once per row object. */
  private sortValue(e: Entry<R>, col: Column<R>): number | string {
    if (e.svCol !== col.id || e.changed || e.sv === undefined) {
      e.sv = col.sortValue ? col.sortValue(e.row) : cellOf(col, e.row).text;
      e.svCol = col.id;
    }
    return e.sv;
  }

  private comparator(): (a: Entry<R>, b: Entry<R>) => number {
    const dir = this.descending ? -1 : 1;
    return (a, b) => {
      const va = a.sv!;
      const vb = b.sv!;
      const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : collator.compare(String(va), String(vb));
      return c !== 0 ? c * dir : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    };
  }

  private sorted(list: Entry<R>[]): Entry<R>[] {
    const col = this.column(this.sortCol);
    if (!col) return list;
    for (const e of list) this.sortValue(e, col);
    return list.slice().sort(this.comparator());
  }

  /**
   * The previous order, less rows gone or changed, merged with the changed and new rows sorted
   * on their own: the same order a full sort gives, for a sort over the changed rows only.
   */
  private merged(shown: Entry<R>[]): Entry<R>[] | undefined {
    if (!this.column(this.sortCol) || !this.orderSorted) return undefined;
    const gen = this.gen;
    const old = this.order.filter((e) => e.gen === gen && !e.changed);
    const changed = shown.filter((e) => e.changed);
    // rows kept plus rows changed must be exactly the rows shown (a filter may have hidden some
    // kept rows before: then sort them all)
    if (old.length + changed.length !== shown.length) return undefined;
    const add = this.sorted(changed);
    const cmp = this.comparator();
    const out = new Array<Entry<R>>(shown.length);
    let i = 0;
    let j = 0;
    let n = 0;
    while (i < old.length && j < add.length) out[n++] = cmp(old[i]!, add[j]!) <= 0 ? old[i++]! : add[j++]!;
    while (i < old.length) out[n++] = old[i++]!;
    while (j < add.length) out[n++] = add[j++]!;
    return out;
  }

  private reorder(hold: boolean, full = false): void {
    const before = this.selectedKey;
    const screenRow = this.index - this.offset;
    const filter = this.filter;
    const shown = filter ? this.entriesIn.filter((e) => filter.test(this.haystack(e.row))) : this.entriesIn;
    if (hold && this.order.length > 0) {
      const gen = this.gen;
      const visible = filter ? new Set(shown) : undefined;
      const kept = this.order.filter((e) => e.gen === gen && (!visible || visible.has(e)));
      const keptSet = new Set(kept);
      this.order = [...kept, ...this.sorted(shown.filter((e) => !keptSet.has(e)))];
      this.orderSorted = false;
    } else {
      this.order = (!full && this.merged(shown)) || this.sorted(shown);
      this.orderSorted = this.column(this.sortCol) !== undefined;
    }
    // the rows are sorted in: what changed is now part of the order
    for (const e of shown) e.changed = false;
    // The same row stays selected; if it left, its neighbour (the row now at its place).
    const at = this.indexOfKey(this.selectedKey);
    const index = at >= 0 ? at : Math.min(this.index, this.order.length - 1);
    this.index = Math.max(0, index);
    this.selectedKey = this.order[this.index]?.key;
    // …and stays on the same screen row when it can.
    this.offset = scrollTo(this.index, this.index - screenRow, this.page, this.order.length);
    if (this.selectedKey !== before) this.opts.onSelect?.(this.selected);
  }

  private selectIndex(i: number): void {
    const before = this.selectedKey;
    this.index = Math.max(0, Math.min(i, this.order.length - 1));
    this.selectedKey = this.order[this.index]?.key;
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
      this.reorder(false, true);
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
      const empty = typeof this.opts.empty === 'function' ? this.opts.empty() : this.opts.empty;
      const why = this.rows.length && this.filter ? `no row matches /${this.filter.text}` : empty ?? 'nothing yet';
      if (height > 1) out.push(line([span(' '), span(clean(why), 'dim')]));
      return out;
    }
    const end = Math.min(this.order.length, this.offset + this.page);
    const sig = this.opts.cellsKey ? `${fitted.map((f) => `${f.column.id}:${f.width}`).join(',')}|${g.ellipsis}|${this.opts.cellsKey()}` : undefined;
    for (let i = this.offset; i < end; i++) {
      const entry = this.order[i]!;
      const row = entry.row;
      const selected = i === this.index;
      const fresh = ctx.now - entry.first < (this.opts.flashMs ?? 0);
      const role: Role | undefined = selected ? (ctx.focused ? 'selected' : 'selectedBlur')
        : fresh ? 'new' : this.opts.rowRole?.(row);
      let cells = sig !== undefined && entry.cellsSig === sig && entry.cellsRow === row ? entry.cells : undefined;
      if (!cells) {
        cells = this.cells(fitted, row, g.ellipsis);
        if (sig !== undefined) {
          entry.cells = cells;
          entry.cellsSig = sig;
          entry.cellsRow = row;
        }
      }
      out.push(line([span(selected ? g.gutter : ' '), ...cells], role));
    }
    return out;
  }

  private cells(fitted: ReturnType<typeof fitColumns<R>>, row: R, ellipsis: string): Span[] {
    const spans: Span[] = [];
    fitted.forEach(({ column, width: w }, n) => {
      const c = cellOf(column, row);
      if (n) spans.push(span(' '));
      const shown = typeof c.spans === 'function' ? c.spans(w) : c.spans;
      if (shown) spans.push(...fitSpans(shown, w, column.align === 'right' ? 'right' : 'left'));
      else spans.push(span(fit(clean(c.text), w, column.align, ellipsis, column.elide), c.role));
    });
    return spans;
  }
}

