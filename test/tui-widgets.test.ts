// The widgets without a screen: column fitting, the table (selection by key across updates, no
// re-sort while the user moves, filters, sort keys, follow), the tree (expand, collapse, lazy
// children), charts, the prompts (history, completion, filter), the layout grid and the render
// scheduler.
import { describe, expect, it } from 'vitest';
import { computeLayout, distribute, type PaneSpec } from '../tui/layout.js';
import { RenderScheduler } from '../tui/scheduler.js';
import { makeTheme, plain, type Line } from '../tui/style.js';
import { strWidth } from '../tui/text.js';
import type { RenderContext } from '../tui/view.js';
import { gauge, sparkline, sparkSpans } from '../tui/widgets/charts.js';
import { fitColumns, type Column } from '../tui/widgets/columns.js';
import { navigate, scrollTo } from '../tui/widgets/nav.js';
import { CommandLine, FilterPrompt, LineEditor, parseFilter } from '../tui/widgets/prompt.js';
import { StatusLine } from '../tui/widgets/statusline.js';
import { Table } from '../tui/widgets/table.js';
import { Tree, type TreeNode } from '../tui/widgets/tree.js';

const theme = makeTheme({ color: true, unicode: true });
const ctx = (over: Partial<RenderContext> = {}): RenderContext => ({ theme, focused: true, now: 0, ...over });
const text = (lines: Line[]) => lines.map(plain);
const press = (w: { handleKey(k: string): boolean }, ...keys: string[]) => keys.forEach((k) => w.handleKey(k));

describe('fitColumns', () => {
  const col = (id: string, width: number, more: Partial<Column<unknown>> = {}): Column<unknown> => ({ id, title: id, width, cell: () => id, ...more });
  const cols = [col('id', 4, { priority: 0 }), col('kind', 7, { priority: 2 }), col('state', 9, { priority: 0 }),
    col('frame', 30, { flex: true, minWidth: 12, priority: 0 }), col('req', 20, { priority: 4 })];
  const shown = (w: number) => fitColumns(cols, w).map((f) => `${f.column.id}:${f.width}`).join(' ');

  it('shows every column when there is room and gives the spare cells to the flexible one', () => {
    expect(shown(100)).toBe('id:4 kind:7 state:9 frame:56 req:20');
  });

  it('drops columns less important than the flexible one before it shrinks', () => {
    expect(shown(60)).toBe('id:4 kind:7 state:9 frame:37');
    expect(shown(52)).toBe('id:4 state:9 frame:37');
  });

  it('then shrinks the flexible column to its minimum, then cuts from the right', () => {
    expect(shown(36)).toBe('id:4 state:9 frame:21');
    expect(shown(27)).toBe('id:4 state:9 frame:12');
    expect(shown(20)).toBe('id:4 state:9 frame:5');
  });

  it('grows flexible columns only up to their maxWidth', () => {
    const capped = [col('a', 4), col('b', 10, { flex: true, maxWidth: 12 }), col('c', 10, { flex: true })];
    expect(fitColumns(capped, 40).map((f) => f.width)).toEqual([4, 12, 22]);
    expect(fitColumns(capped.slice(0, 2), 40).map((f) => f.width)).toEqual([4, 12]);
  });

  it('never exceeds the width', () => {
    for (let w = 0; w <= 120; w++) {
      const f = fitColumns(cols, w);
      expect(f.reduce((n, x) => n + x.width, 0) + Math.max(0, f.length - 1)).toBeLessThanOrEqual(Math.max(w, 0));
    }
  });
});

describe('navigate and scrollTo', () => {
  it.each([
    ['j', 3, 4], ['down', 3, 4], ['k', 3, 2], ['up', 0, 0], ['g', 7, 0], ['G', 2, 9], ['home', 5, 0], ['end', 5, 9],
    ['pagedown', 0, 4], ['pageup', 9, 5], ['j', 9, 9], ['x', 3, undefined],
  ])('%s from %d → %s (10 rows, page 5)', (k, from, to) => expect(navigate(k as string, from as number, 10, 5)).toBe(to));

  it('scrolls as little as it can', () => {
    expect(scrollTo(3, 0, 5, 20)).toBe(0);
    expect(scrollTo(7, 0, 5, 20)).toBe(3);
    expect(scrollTo(2, 5, 5, 20)).toBe(2);
    expect(scrollTo(19, 0, 5, 20)).toBe(15);
    expect(scrollTo(3, 10, 5, 4)).toBe(0);
  });
});

interface Co { id: number; state: string; age: number }
const coTable = (over: Partial<ConstructorParameters<typeof Table<Co>>[0]> = {}) => {
  const clock = { now: 1000 };
  const table = new Table<Co>({
    key: (r) => String(r.id), now: () => clock.now, sort: { column: 'age', descending: true },
    columns: [
      { id: 'id', title: 'co', width: 3, align: 'right', cell: (r) => String(r.id), sortKey: 'i', sortValue: (r) => r.id },
      { id: 'state', title: 'state', width: 9, cell: (r) => r.state, sortKey: 's' },
      { id: 'age', title: 'age', width: 5, align: 'right', cell: (r) => String(r.age), sortValue: (r) => r.age, descending: true },
    ],
    ...over,
  });
  return { table, clock };
};
const cos = (...rows: [number, string, number][]): Co[] => rows.map(([id, state, age]) => ({ id, state, age }));
const ids = (t: Table<Co>) => t.visible().map((r) => r.id);

describe('Table', () => {
  it('renders a header, a gutter mark on the selected row and rows of exactly the width', () => {
    const { table } = coTable();
    table.setData(cos([1, 'running', 5], [2, 'waiting', 50]));
    const lines = table.render(24, 5, ctx());
    expect(text(lines)).toEqual(['  co state      ↓age', '>  2 waiting      50', '   1 running       5']);
    expect(lines[1]!.role).toBe('selected');
    expect(table.render(24, 5, ctx({ focused: false }))[1]!.role).toBe('selectedBlur');
  });

  it('keeps the selection on the same key when the data re-sorts', () => {
    const { table, clock } = coTable();
    table.setData(cos([1, 'a', 30], [2, 'b', 20], [3, 'c', 10]));
    press(table, 'j');
    expect(table.selected?.id).toBe(2);
    clock.now += 10_000;
    table.setData(cos([1, 'a', 30], [2, 'b', 5], [3, 'c', 40]));
    expect(ids(table)).toEqual([3, 1, 2]);
    expect(table.selected?.id).toBe(2);
  });

  it('the same row objects again in the same order: nothing is filtered or sorted again, the view holds', () => {
    let matched = 0;
    const { table, clock } = coTable({ filterText: (r) => (matched++, r.state) });
    table.setFilter({ text: '', invert: false, test: (s) => s !== 'x' });
    const rows = cos([1, 'a', 30], [2, 'b', 20], [3, 'c', 10]);
    table.setData(rows);
    press(table, 'j');
    const before = matched;
    clock.now += 10_000;
    table.setData([...rows]);
    expect(matched).toBe(before);
    expect(ids(table)).toEqual([1, 2, 3]);
    expect(table.selected?.id).toBe(2);
    // one row another object: the rows are filtered and sorted again
    table.setData([rows[0]!, { ...rows[1]!, age: 99 }, rows[2]!]);
    expect(matched).toBe(before + 3);
    expect(ids(table)).toEqual([2, 1, 3]);
    expect(table.selected?.id).toBe(2);
  });

  it('an order held while the user moved is sorted again once the hold is over, though no row changed', () => {
    const { table, clock } = coTable({ holdOrderMs: 3_000 });
    table.setData(cos([1, 'a', 30], [2, 'b', 20]));
    press(table, 'j');
    // a new row while the order is held goes below the rows in place
    const rows = [...cos([1, 'a', 30], [2, 'b', 20]), ...cos([3, 'c', 99])];
    table.setData(rows);
    expect(ids(table)).toEqual([1, 2, 3]);
    clock.now += 1_000;
    table.setData([...rows]);
    expect(ids(table)).toEqual([1, 2, 3]);
    clock.now += 5_000;
    table.setData([...rows]);
    expect(ids(table)).toEqual([3, 1, 2]);
  });

  it('re-sorting only the rows handed in anew gives the order a full sort gives', () => {
    // A front end re-walks a quarter of its rows per sample and hands the rest in as the same
    // objects: those keep their place and only the new ones are sorted and merged in.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
    const { table, clock } = coTable();
    let rows: Co[] = Array.from({ length: 400 }, (_, i) => ({ id: i, state: ['a', 'b', 'c'][rnd(3)]!, age: rnd(50) }));
    const full = (sortCol: 'age' | 'state' | 'id', desc: boolean) => [...rows].sort((x, y) => {
      const c = sortCol === 'state' ? x.state.localeCompare(y.state) : (x[sortCol] as number) - (y[sortCol] as number);
      return c !== 0 ? (desc ? -c : c) : String(x.id) < String(y.id) ? -1 : String(x.id) > String(y.id) ? 1 : 0;
    }).map((r) => r.id);
    table.setData(rows);
    for (let round = 0; round < 30; round++) {
      clock.now += 5_000;
      rows = rows.filter(() => rnd(20) !== 0).map((r) => (rnd(4) === 0 ? { ...r, age: rnd(50), state: ['a', 'b', 'c'][rnd(3)]! } : r));
      for (let k = 0; k < 10; k++) rows.push({ id: 1000 + round * 10 + k, state: 'b', age: rnd(50) });
      if (round === 10) press(table, 's');
      if (round === 20) press(table, 'I');
      table.setData(rows);
      const col = round < 10 ? 'age' : 'state';
      expect(ids(table)).toEqual(full(col, round < 10 ? true : round >= 20));
    }
  });

  it('selects the neighbour when the selected row goes away', () => {
    const { table } = coTable();
    table.setData(cos([1, 'a', 30], [2, 'b', 20], [3, 'c', 10]));
    press(table, 'j');
    table.setData(cos([1, 'a', 30], [3, 'c', 10]));
    expect(table.selected?.id).toBe(3);
    table.setData([]);
    expect(table.selected).toBeUndefined();
    expect(text(table.render(20, 3, ctx()))[1]).toBe(' nothing yet');
  });

  it('does not re-sort while the user moves (holdOrderMs), then does', () => {
    const { table, clock } = coTable({ holdOrderMs: 2000 });
    table.setData(cos([1, 'a', 30], [2, 'b', 20], [3, 'c', 10]));
    press(table, 'j');
    clock.now += 500;
    table.setData(cos([1, 'a', 30], [2, 'b', 20], [3, 'c', 99], [4, 'd', 1000]));
    expect(ids(table)).toEqual([1, 2, 3, 4]); // held; the new row goes to the end
    expect(table.selected?.id).toBe(2);
    clock.now += 5000;
    table.setData(cos([1, 'a', 30], [2, 'b', 20], [3, 'c', 99], [4, 'd', 1000]));
    expect(ids(table)).toEqual([4, 3, 1, 2]);
    expect(table.selected?.id).toBe(2);
  });

  it('sorts by a column letter and inverts with I', () => {
    const { table } = coTable();
    table.setData(cos([2, 'b', 30], [1, 'c', 20], [3, 'a', 10]));
    press(table, 'i');
    expect(ids(table)).toEqual([1, 2, 3]);
    press(table, 'I');
    expect(ids(table)).toEqual([3, 2, 1]);
    press(table, 's');
    expect(ids(table)).toEqual([3, 2, 1]);
    expect(table.sort).toEqual({ column: 'state', descending: false });
    expect(text(table.render(24, 2, ctx()))[0]).toBe('  co state↑      age');
  });

  it('filters, inverted with !, and says when nothing matches', () => {
    const { table } = coTable();
    table.setData(cos([1, 'running', 3], [2, 'waiting', 2], [3, 'waiting', 1]));
    table.setFilter(parseFilter('WAIT'));
    expect(ids(table)).toEqual([2, 3]);
    table.setFilter(parseFilter('!wait'));
    expect(ids(table)).toEqual([1]);
    table.setFilter(parseFilter('zzz'));
    expect(text(table.render(30, 3, ctx()))[1]).toBe(' no row matches /zzz');
    table.setFilter(undefined);
    expect(table.counts).toEqual({ shown: 3, total: 3, index: 0 });
  });

  it('keeps the selected row on the same screen line when rows arrive above it', () => {
    const { table, clock } = coTable();
    table.setData(cos(...Array.from({ length: 20 }, (_, i) => [i + 1, 's', 100 - i] as [number, string, number])));
    table.render(20, 6, ctx());
    press(table, 'j', 'j', 'j');
    clock.now += 10_000;
    table.setData(cos([100, 's', 1000], ...Array.from({ length: 20 }, (_, i) => [i + 1, 's', 100 - i] as [number, string, number])));
    const lines = text(table.render(20, 6, ctx()));
    expect(lines[4]).toMatch(/^> +4 /);
  });

  it('follows the tail of a stream while the last row is selected, not after the user moved up', () => {
    const { table } = coTable({ follow: true, sort: undefined });
    table.setData(cos([1, 'a', 1]));
    table.setData(cos([1, 'a', 1], [2, 'b', 1]));
    expect(table.selected?.id).toBe(2);
    press(table, 'k');
    table.setData(cos([1, 'a', 1], [2, 'b', 1], [3, 'c', 1]));
    expect(table.selected?.id).toBe(1);
  });

  it('marks rows that are new since the first data for flashMs', () => {
    const { table, clock } = coTable({ flashMs: 2000 });
    table.setData(cos([1, 'a', 1]));
    clock.now = 5000;
    table.setData(cos([1, 'a', 1], [2, 'b', 0]));
    const lines = table.render(20, 4, ctx({ now: 5500 }));
    expect(lines.map((l) => l.role)).toEqual([undefined, 'selected', 'new']);
    expect(table.render(20, 4, ctx({ now: 8000 }))[2]!.role).toBeUndefined();
  });

  it('escapes worker text and fits CJK cells exactly', () => {
    const { table } = coTable();
    table.setData(cos([1, '日本語の状態です', 1], [2, 'x\x1b[2Jy', 2]));
    for (const l of table.render(20, 4, ctx())) expect(strWidth(plain(l))).toBe(20);
    expect(text(table.render(20, 4, ctx()))).toEqual(['  co state      ↓age', '>  2 x\\x1b[2Jy     2', '   1 日本語の…     1']);
  });

  it('tells who follows the selection only when it changes', () => {
    const seen: (number | undefined)[] = [];
    const { table } = coTable({ onSelect: (r) => seen.push(r?.id) });
    table.setData(cos([1, 'a', 2], [2, 'b', 1]));
    table.setData(cos([1, 'a', 2], [2, 'b', 1]));
    press(table, 'j', 'j');
    expect(seen).toEqual([1, 2]);
  });
});

describe('Tree', () => {
  const roots = (load?: TreeNode['loadChildren']): TreeNode[] => [
    { id: 'f0', label: '#0 a.lua:1', value: 'f', expanded: true, children: [
      { id: 'f0/x', label: 'x', value: '1' },
      { id: 'f0/t', label: 't', value: 'table', children: [{ id: 'f0/t/k', label: 'k', value: '"v"' }] },
      { id: 'f0/lazy', label: 'ctx', value: 'table (cut)', loadChildren: load ?? (() => [{ id: 'f0/lazy/u', label: 'user', value: '"bob"' }]) },
    ] },
    { id: 'f1', label: '#1 b.lua:2', value: 'g', children: [{ id: 'f1/y', label: 'y', value: '2' }] },
  ];
  const show = (t: Tree) => text(t.render(40, 20, ctx())).map((s) => s.trimEnd());

  it('renders open and closed nodes, then expands with Enter/Space/→ and collapses with ←', () => {
    const tree = new Tree();
    tree.setRoots(roots());
    expect(show(tree)).toEqual(['>▾ #0 a.lua:1 = f', '     x = 1', '   ▸ t = table', '   ▸ ctx = table (cut)', ' ▸ #1 b.lua:2 = g']);
    press(tree, 'j', 'j', 'right');
    expect(show(tree)[3]).toBe('       k = "v"');
    press(tree, 'right');
    expect(tree.selected?.id).toBe('f0/t/k');
    press(tree, 'left');
    expect(tree.selected?.id).toBe('f0/t');
    press(tree, 'left');
    expect(tree.isOpen('f0/t')).toBe(false);
    press(tree, 'space');
    expect(tree.isOpen('f0/t')).toBe(true);
    press(tree, 'enter');
    expect(tree.isOpen('f0/t')).toBe(false);
  });

  it('loads lazy children on first expansion', () => {
    let calls = 0;
    const tree = new Tree();
    tree.setRoots(roots(() => { calls++; return [{ id: 'f0/lazy/u', label: 'user', value: '"bob"' }]; }));
    expect(calls).toBe(0);
    press(tree, 'j', 'j', 'j', 'enter');
    expect(calls).toBe(1);
    expect(show(tree)[4]).toBe('       user = "bob"');
  });

  it('shows loading… while children come, then them, or the error as a row', async () => {
    let resolve: (n: TreeNode[]) => void = () => {};
    let changes = 0;
    const tree = new Tree({ onChange: () => changes++ });
    tree.setRoots(roots(() => new Promise((r) => { resolve = r; })));
    press(tree, 'j', 'j', 'j', 'right');
    expect(show(tree)[4]).toBe('       loading...');
    resolve([{ id: 'f0/lazy/u', label: 'user', value: '"bob"' }]);
    await Promise.resolve();
    expect(changes).toBe(1);
    expect(show(tree)[4]).toBe('       user = "bob"');

    const failing = new Tree();
    failing.setRoots(roots(() => Promise.reject(new Error('worker detached'))));
    press(failing, 'j', 'j', 'j', 'right');
    await new Promise((r) => setTimeout(r, 0));
    expect(show(failing)[4]).toBe('       worker detached');
  });

  it('keeps open nodes and the selection across new roots', () => {
    const tree = new Tree();
    tree.setRoots(roots());
    press(tree, 'G', 'right', 'j');
    expect(tree.selected?.id).toBe('f1/y');
    tree.setRoots(roots());
    expect(tree.selected?.id).toBe('f1/y');
    expect(tree.isOpen('f1')).toBe(true);
  });
});

describe('charts', () => {
  const marks = theme.glyphs.spark;
  it('draws a sparkline, newest right, zero lowest, anything above zero higher, gaps blank', () => {
    expect(sparkline([0, 1, 2, 4, 8], { width: 5, marks })).toBe('▁▂▃▅█');
    expect(sparkline([3, 3], { width: 4, marks })).toBe('  ██');
    expect(sparkline([0, undefined, 5, NaN], { width: 4, marks })).toBe('▁ █ ');
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], { width: 3, marks })).toBe('▇██');
    expect(sparkline([1, 100], { width: 2, marks, max: 1000 })).toBe('▂▂');
    expect(sparkline([0, 5, 10], { width: 3, marks: makeTheme({ color: false, unicode: false }).glyphs.spark })).toBe('_=#');
  });

  it('colours samples by threshold in runs', () => {
    expect(sparkSpans([1, 2, 9, 9], { width: 4, marks, thresholds: { warn: 5, bad: 8 } }))
      .toEqual([{ text: '▂▃', role: 'ok' }, { text: '██', role: 'bad' }]);
  });

  it('fills a gauge in eighths, or # and + in ASCII', () => {
    expect(gauge(0.5, 4, true)).toBe('██  ');
    expect(gauge(0.55, 4, true)).toBe('██▏ ');
    expect(gauge(1.5, 3, true)).toBe('███');
    expect(gauge(0.6, 5, false)).toBe('###  ');
    expect(gauge(0.7, 5, false)).toBe('###+ ');
  });
});

describe('prompts', () => {
  it('edits a line with readline keys', () => {
    const e = new LineEditor();
    press(e, 'a', 'b', 'c', 'left', 'left', 'X', 'end', 'space', 'd', 'C-w', 'home', 'delete');
    expect(e.text).toBe('Xbc ');
    press(e, 'end', 'C-u');
    expect(e.text).toBe('');
  });

  it('walks the history with ↑/↓ and gives back what was being typed', () => {
    const run: string[] = [];
    const c = new CommandLine({ onSubmit: (t) => run.push(t) });
    for (const cmd of ['stack 17', 'delete 2', 'delete 2']) {
      c.open();
      [...cmd].forEach((ch) => c.handleKey(ch === ' ' ? 'space' : ch));
      c.handleKey('enter');
    }
    expect(run).toEqual(['stack 17', 'delete 2', 'delete 2']);
    expect(c.history).toEqual(['stack 17', 'delete 2']);
    c.open();
    press(c, 'l', 'o');
    press(c, 'up');
    expect(c.editor.text).toBe('delete 2');
    press(c, 'up', 'up');
    expect(c.editor.text).toBe('stack 17');
    press(c, 'down', 'down');
    expect(c.editor.text).toBe('lo');
    press(c, 'escape');
    expect(c.active).toBe(false);
    expect(run).toHaveLength(3);
  });

  it('completes one candidate, or the common prefix and shows them all', () => {
    const shown: string[][] = [];
    const words = ['breakpoint', 'breakpoints', 'delete', 'detach'];
    const c = new CommandLine({
      onSubmit: () => {}, onCandidates: (x) => shown.push(x),
      complete: (text, cursor) => ({ start: 0, candidates: words.filter((w) => w.startsWith(text.slice(0, cursor))) }),
    });
    c.open();
    press(c, 'd', 'e', 'l', 'tab');
    expect(c.editor.text).toBe('delete ');
    c.open();
    press(c, 'b', 'tab');
    expect(c.editor.text).toBe('breakpoint');
    expect(shown).toEqual([['breakpoint', 'breakpoints']]);
  });

  it('filters live, ! inverts, Esc puts the previous filter back', () => {
    const target = { filter: parseFilter('old'), setFilter(f: ReturnType<typeof parseFilter>) { this.filter = f; } };
    const p = new FilterPrompt();
    p.open(target);
    press(p, 'C-u', '!', 'x');
    expect(target.filter?.invert).toBe(true);
    expect(target.filter?.test('abc')).toBe(true);
    expect(target.filter?.test('xyz')).toBe(false);
    press(p, 'escape');
    expect(target.filter?.text).toBe('old');
    p.open(target);
    press(p, 'C-u', 'enter');
    expect(target.filter).toBeUndefined();
    expect(parseFilter('!')).toBeUndefined();
  });

  it('draws the cursor as a reverse cell and scrolls a long line', () => {
    const e = new LineEditor();
    e.set('x'.repeat(50));
    const spans = e.render(':', 20, '…');
    expect(spans.map((s) => s.text).join('')).toBe(`:…${'x'.repeat(17)} `);
    expect(spans.find((s) => s.role === 'cursor')?.text).toBe(' ');
  });
});

describe('status line', () => {
  it('shows an error longer than a note, and state on the right', () => {
    const clock = { now: 0 };
    const s = new StatusLine({ now: () => clock.now, infoMs: 1000, errorMs: 5000 });
    s.setRight('refresh 1s');
    s.error(new Error('worker 4243 detached'));
    expect(plain(s.render(50, theme))).toBe('error: worker 4243 detached             refresh 1s');
    expect(s.render(50, theme).spans[0]!.role).toBe('error');
    clock.now = 4000;
    expect(s.current()?.kind).toBe('error');
    clock.now = 6000;
    expect(plain(s.render(20, theme))).toBe('          refresh 1s');
    s.info('ok');
    clock.now = 7001;
    expect(s.current()).toBeUndefined();
    s.dispose();
  });
});

describe('layout', () => {
  const panes: PaneSpec[] = [
    { id: 'queue', want: 5 }, { id: 'tasks', want: 5 }, { id: 'cos', weight: 3 },
    { id: 'stack', weight: 2, side: 'right' }, { id: 'hits', weight: 2, side: 'right' },
  ];
  const within = (cols: number, rows: number, r: { x: number; y: number; width: number; height: number }) =>
    r.x >= 0 && r.y >= 0 && r.x + r.width <= cols && r.y + r.height <= rows;

  it('distributes rows by weight up to what each wants', () => {
    expect(distribute(20, [{ min: 3, weight: 1, want: 5 }, { min: 3, weight: 3 }, { min: 3, weight: 1 }])).toEqual([5, 10, 5]);
    expect(distribute(9, [{ min: 3, weight: 1 }, { min: 3, weight: 1 }, { min: 3, weight: 1 }])).toEqual([3, 3, 3]);
    expect(distribute(10, [{ min: 1, weight: 1, want: 2 }, { min: 1, weight: 1, want: 2 }])).toEqual([5, 5]);
  });

  it('stacks the panes at 80×24 under a 2-line header, above the status line and footer', () => {
    const l = computeLayout({ cols: 80, rows: 24, panes, focus: 'cos', expanded: false, headerLines: 2 });
    expect(l.mode).toBe('stacked');
    expect(l.header).toEqual({ x: 0, y: 0, width: 80, height: 2 });
    expect(l.status.y).toBe(22);
    expect(l.footer.y).toBe(23);
    const rects = [...l.panes.values()];
    expect(rects.reduce((n, r) => n + r.height, 0)).toBe(20);
    expect(rects.every((r) => r.height >= 3 && r.width === 80)).toBe(true);
    expect(l.hidden).toEqual([]);
  });

  it('goes side by side from 140 columns', () => {
    const l = computeLayout({ cols: 200, rows: 60, panes, focus: 'cos', expanded: false, headerLines: 2 });
    expect(l.mode).toBe('columns');
    expect(l.separator).toEqual({ x: 99, y: 2, width: 1, height: 56 });
    expect(l.panes.get('stack')!.x).toBe(100);
    for (const r of l.panes.values()) expect(within(200, 60, r)).toBe(true);
  });

  it('gives the focused pane the whole body when expanded', () => {
    const l = computeLayout({ cols: 80, rows: 24, panes, focus: 'hits', expanded: true, headerLines: 1 });
    expect([...l.panes.entries()]).toEqual([['hits', { x: 0, y: 1, width: 80, height: 21 }]]);
    expect(l.hidden).toEqual(['queue', 'tasks', 'cos', 'stack']);
  });

  it('hides panes (never the focused one) when they cannot all have their minimum', () => {
    const l = computeLayout({ cols: 80, rows: 12, panes, focus: 'stack', expanded: false, headerLines: 1 });
    expect(l.hidden).toEqual(['queue', 'hits']);
    expect(l.panes.has('stack')).toBe(true);
    let bottom = 1;
    for (const r of l.panes.values()) { expect(r.y).toBe(bottom); bottom += r.height; }
    expect(bottom).toBeLessThanOrEqual(10);
  });
});

describe('RenderScheduler', () => {
  it('makes one draw of many requests in a tick, and flush draws now', async () => {
    let draws = 0;
    const s = new RenderScheduler({ draw: () => draws++ });
    for (let i = 0; i < 50; i++) s.request();
    expect(draws).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect([draws, s.renders, s.requests]).toEqual([1, 1, 50]);
    s.request();
    s.flush();
    await new Promise((r) => setImmediate(r));
    expect(s.renders).toBe(2);
    s.dispose();
    s.request();
    await new Promise((r) => setImmediate(r));
    expect(s.renders).toBe(2);
  });

  it('waits delayMs when asked', async () => {
    const s = new RenderScheduler({ draw: () => {}, delayMs: 20 });
    s.request();
    await new Promise((r) => setImmediate(r));
    expect(s.renders).toBe(0);
    await new Promise((r) => setTimeout(r, 40));
    expect(s.renders).toBe(1);
  });
});
