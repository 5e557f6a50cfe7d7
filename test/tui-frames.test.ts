// Golden frames of the TUI foundation: a shell with five panes fed plain data (queue with
// sparklines and thresholds, tasks, coroutines, a stack/locals tree, a hit stream), rendered
// headless at 80×24 and 200×60, one frame per scripted key. UPDATE_GOLDEN=1 rewrites the files
// in test/tui-golden/; a missing one fails.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { fmtClock, fmtCount, fmtDuration, fmtRate } from '../tui/format.js';
import { Shell } from '../tui/shell.js';
import { line, span, type Theme } from '../tui/style.js';
import type { Term } from '../tui/term.js';
import { strWidth } from '../tui/text.js';
import { golden, testTerm, typeKeys, type FakeTty } from '../tui/testing.js';
import { sparkSpans } from '../tui/widgets/charts.js';
import { Table } from '../tui/widgets/table.js';
import { Tree, type TreeNode } from '../tui/widgets/tree.js';

const T0 = Date.UTC(2025, 0, 15, 10, 30, 0);

interface QueueRow { pid: number; runtime: string; depth: number; max: number; inFlight: number; rate: number; p50: number; p99: number; history: number[]; timeouts: number; rejected: number }
interface TaskRow { id: number; runtime: string; method: string; state: string; ageMs: number; co: number; req: string }
interface CoRow { id: number; pid: number; kind: string; state: string; wait: string; ageMs: number; frame: string; req: string }
interface HitRow { seq: number; at: number; bp: number; pid: number; co: number; where: string; msg: string }

const queueRows = (): QueueRow[] => [
  { pid: 4243, runtime: 'rocksdb', depth: 3, max: 2048, inFlight: 2, rate: 1250, p50: 0.42, p99: 3.1, history: [1, 2, 2, 3, 5, 8, 4, 3, 2, 3, 4, 3, 2, 1, 2, 3], timeouts: 0, rejected: 0 },
  { pid: 4243, runtime: 'imgresize', depth: 1700, max: 2048, inFlight: 8, rate: 85.5, p50: 12.5, p99: 240, history: [200, 400, 800, 1200, 1500, 1600, 1650, 1700], timeouts: 12, rejected: 3 },
  { pid: 4244, runtime: 'rocksdb', depth: 0, max: 2048, inFlight: 0, rate: 980, p50: 0.38, p99: 22, history: [0, 0, 1, 0, 0, 2, 0, 0, 1, 0], timeouts: 0, rejected: 0 },
];

const taskRows = (): TaskRow[] => [
  { id: 901, runtime: 'imgresize', method: 'resize', state: 'running', ageMs: 240, co: 17, req: '{w=640,h=480,src="/img/日本語.png"}' },
  { id: 902, runtime: 'imgresize', method: 'resize', state: 'queued', ageMs: 1800, co: 21, req: '{w=1280,h=720}' },
  { id: 903, runtime: 'rocksdb', method: 'get', state: 'queued', ageMs: 0.4, co: 22, req: '"user:1042"' },
];

const coRows = (): CoRow[] => [
  { id: 17, pid: 4243, kind: 'request', state: 'waiting', wait: 'ffi imgresize#901', ageMs: 260, frame: 'app/images/resize_handler.lua:88 in resize', req: 'GET /img/resize?w=640' },
  { id: 21, pid: 4243, kind: 'request', state: 'waiting', wait: 'ffi imgresize#902', ageMs: 1820, frame: 'app/images/resize_handler.lua:88 in resize', req: 'GET /img/resize?w=1280' },
  { id: 22, pid: 4244, kind: 'request', state: 'waiting', wait: 'ffi rocksdb#903', ageMs: 1, frame: 'app/user.lua:12 in load', req: 'GET /user/1042' },
  { id: 5, pid: 4243, kind: 'timer', state: 'suspended', wait: 'sleep 1s', ageMs: 65_000, frame: 'app/health.lua:30 in loop', req: '' },
  { id: 30, pid: 4244, kind: 'thread', state: 'running', wait: '', ageMs: 3, frame: 'app/pump.lua:51 in drain', req: '' },
  { id: 31, pid: 4244, kind: 'user', state: 'dead', wait: '', ageMs: 12, frame: 'app/evil.lua:1 in \x1b]0;pwned\x07x', req: '' },
];

const hitRows = (): HitRow[] => [
  { seq: 1, at: T0 - 4000, bp: 1, pid: 4243, co: 17, where: 'app/images/resize_handler.lua:88', msg: 'w=640 user=bob' },
  { seq: 2, at: T0 - 2500, bp: 1, pid: 4243, co: 21, where: 'app/images/resize_handler.lua:88', msg: 'w=1280 user=アリス' },
  { seq: 3, at: T0 - 900, bp: 2, pid: 4244, co: 22, where: 'ffi:rocksdb.get', msg: 'enqueue #req=9' },
];

function stackRoots(): TreeNode[] {
  return [
    {
      id: 'f0', label: '#0 app/images/resize_handler.lua:88', value: 'resize', expanded: true,
      children: [
        { id: 'f0/w', label: 'w', value: '640' },
        { id: 'f0/opts', label: 'opts', value: 'table: 3 keys', children: [
          { id: 'f0/opts/fit', label: 'fit', value: '"cover"' },
          { id: 'f0/opts/q', label: 'quality', value: '85' },
          { id: 'f0/opts/src', label: 'src', value: '"/img/日本語.png"' },
        ] },
        { id: 'f0/ctx', label: 'ctx', value: 'table: 12 keys (cut at depth 2)', loadChildren: () => [
          { id: 'f0/ctx/user', label: 'user', value: '"bob"' },
          { id: 'f0/ctx/started', label: 'started', value: '1736937000.25' },
        ] },
        { id: 'f0/err', label: 'err', value: 'nil', role: 'dim' },
      ],
    },
    { id: 'f1', label: '#1 app/images/router.lua:20', value: 'handle', children: [{ id: 'f1/path', label: 'path', value: '"/img/resize"' }] },
    { id: 'f2', label: '#2 =content_by_lua(nginx.conf:40):2', value: 'main chunk', children: [] },
  ];
}

interface Demo { shell: Shell; queue: Table<QueueRow>; tasks: Table<TaskRow>; cos: Table<CoRow>; stack: Tree; hits: Table<HitRow>; quits: number; commands: string[]; clock: { now: number } }

function buildDemo(term: Term): Demo {
  const clock = { now: T0 };
  const now = () => clock.now;
  const unicode = term.theme.unicode;
  const dur = (ms: number, width?: number) => fmtDuration(ms, { unicode, ...(width !== undefined && { width }) });
  const queue = new Table<QueueRow>({
    key: (r) => `${r.pid}/${r.runtime}`, now, sort: { column: 'p99' },
    columns: [
      { id: 'pid', title: 'worker', width: 6, align: 'right', cell: (r) => String(r.pid), priority: 4 },
      { id: 'rt', title: 'runtime', width: 10, minWidth: 7, cell: (r) => r.runtime, priority: 0, sortKey: 'n' },
      { id: 'depth', title: 'depth', width: 9, align: 'right', priority: 0, sortKey: 'd', descending: true, sortValue: (r) => r.depth / r.max,
        cell: (r) => ({ text: `${fmtCount(r.depth, 4)}/${fmtCount(r.max, 4)}`, role: r.depth / r.max >= 0.8 ? 'bad' : r.depth / r.max >= 0.5 ? 'warn' : 'ok' }) },
      { id: 'fl', title: 'fly', width: 3, align: 'right', cell: (r) => String(r.inFlight), priority: 3 },
      { id: 'rate', title: 'rate', width: 7, align: 'right', cell: (r) => fmtRate(r.rate, 7), priority: 1, sortKey: 'r', sortValue: (r) => r.rate, descending: true },
      { id: 'p50', title: 'p50', width: 6, align: 'right', cell: (r) => dur(r.p50, 6), priority: 2 },
      { id: 'p99', title: 'p99', width: 6, align: 'right', priority: 0, sortKey: 'l', sortValue: (r) => r.p99, descending: true,
        cell: (r) => ({ text: dur(r.p99, 6), role: r.p99 >= 100 ? 'bad' : r.p99 >= 10 ? 'warn' : 'ok' }) },
      { id: 'trend', title: 'depth trend', width: 16, minWidth: 8, maxWidth: 30, flex: true, priority: 2,
        cell: (r) => ({ text: '', spans: (w: number) => sparkSpans(r.history, { width: w, marks: term.theme.glyphs.spark, thresholds: { warn: r.max * 0.5, bad: r.max * 0.8 } }) }) },
      { id: 'to', title: 'tmo', width: 4, align: 'right', cell: (r) => ({ text: fmtCount(r.timeouts, 4), ...(r.timeouts > 0 && { role: 'bad' as const }) }), priority: 5 },
      { id: 'rej', title: 'rej', width: 4, align: 'right', cell: (r) => ({ text: fmtCount(r.rejected, 4), ...(r.rejected > 0 && { role: 'bad' as const }) }), priority: 5 },
    ],
  });
  const tasks = new Table<TaskRow>({
    key: (r) => String(r.id), now, sort: { column: 'age', descending: true },
    columns: [
      { id: 'id', title: 'task', width: 5, align: 'right', cell: (r) => String(r.id), priority: 0 },
      { id: 'rt', title: 'runtime.method', width: 16, minWidth: 10, cell: (r) => `${r.runtime}.${r.method}`, priority: 0 },
      { id: 'state', title: 'state', width: 7, cell: (r) => r.state, priority: 1 },
      { id: 'age', title: 'age', width: 6, align: 'right', sortKey: 'a', sortValue: (r) => r.ageMs, descending: true, priority: 0,
        cell: (r) => ({ text: dur(r.ageMs, 6), role: r.ageMs >= 1000 ? 'bad' : r.ageMs >= 100 ? 'warn' : 'ok' }) },
      { id: 'co', title: 'co', width: 4, align: 'right', cell: (r) => String(r.co), priority: 2 },
      { id: 'req', title: 'request', width: 30, minWidth: 10, flex: true, cell: (r) => r.req, priority: 1 },
    ],
  });
  const cos = new Table<CoRow>({
    key: (r) => String(r.id), now, sort: { column: 'age', descending: true }, holdOrderMs: 3000, flashMs: 2000,
    rowRole: (r) => (r.state === 'dead' ? 'dim' : undefined),
    columns: [
      { id: 'id', title: 'co', width: 4, align: 'right', cell: (r) => String(r.id), priority: 0, sortKey: 'i', sortValue: (r) => r.id },
      { id: 'pid', title: 'worker', width: 6, align: 'right', cell: (r) => String(r.pid), priority: 3 },
      { id: 'kind', title: 'kind', width: 7, cell: (r) => r.kind, priority: 2 },
      { id: 'state', title: 'state', width: 9, cell: (r) => r.state, priority: 0, sortKey: 's' },
      { id: 'wait', title: 'waits on', width: 18, minWidth: 10, cell: (r) => r.wait, priority: 1 },
      { id: 'age', title: 'age', width: 6, align: 'right', sortKey: 'a', sortValue: (r) => r.ageMs, descending: true, priority: 0,
        cell: (r) => ({ text: dur(r.ageMs, 6), role: r.state !== 'waiting' ? undefined : r.ageMs >= 1000 ? 'bad' : r.ageMs >= 100 ? 'warn' : 'ok' }) },
      { id: 'frame', title: 'top frame', width: 34, minWidth: 16, flex: true, elide: 'start', cell: (r) => r.frame, priority: 0 },
      { id: 'req', title: 'request', width: 24, cell: (r) => r.req, priority: 4 },
    ],
  });
  const stack = new Tree({ empty: 'select a coroutine' });
  const hits = new Table<HitRow>({
    key: (r) => String(r.seq), now, follow: true, empty: 'no hits yet: `:breakpoint FILE:LINE`',
    columns: [
      { id: 'at', title: 'time', width: 8, cell: (r) => fmtClock(r.at, { utc: true }), priority: 2 },
      { id: 'bp', title: 'bp', width: 3, align: 'right', cell: (r) => String(r.bp), priority: 0 },
      { id: 'pid', title: 'worker', width: 6, align: 'right', cell: (r) => String(r.pid), priority: 3 },
      { id: 'co', title: 'co', width: 4, align: 'right', cell: (r) => String(r.co), priority: 1 },
      { id: 'where', title: 'where', width: 30, minWidth: 14, elide: 'start', cell: (r) => r.where, priority: 0 },
      { id: 'msg', title: 'message', width: 20, minWidth: 10, flex: true, cell: (r) => r.msg, priority: 0 },
    ],
  });
  const demo: Demo = { shell: undefined as unknown as Shell, queue, tasks, cos, stack, hits, quits: 0, commands: [], clock };
  const header = (width: number, theme: Theme) => [
    line([span(' nffi-inspect', 'header'), span(`${theme.glyphs.sep}master 4242${theme.glyphs.sep}2 workers attached${theme.glyphs.sep}up 12m05s`)]),
    line([span(' queue', 'label'), span(' 1.7k/4.1k'), span(' rate', 'label'), span(' 2.3k/s'), span(' p99', 'label'), span(' 240ms', 'bad'),
      span(`${theme.glyphs.sep}bp`, 'label'), span(' 2'), span(' hits', 'label'), span(' 0.8/s'), span(' drops', 'label'), span(' 0')]),
  ];
  demo.shell = new Shell({
    term, now, header,
    panes: [
      { id: 'queue', title: 'FFI queues', view: queue, want: () => queue.counts.shown + 2, info: () => `${queue.counts.shown} runtimes` },
      { id: 'tasks', title: 'Tasks', view: tasks, want: () => tasks.counts.shown + 2, info: () => `${tasks.counts.shown} pending` },
      { id: 'cos', title: 'Coroutines', view: cos, weight: 3, info: () => `${cos.counts.index + 1}/${cos.counts.shown}` },
      { id: 'stack', title: 'Stack', view: stack, weight: 2, side: 'right', info: () => 'co 17' },
      { id: 'hits', title: 'Hits', view: hits, weight: 2, side: 'right', info: () => `${hits.counts.total} hits` },
    ],
    onQuit: () => { demo.quits++; },
    onCommand: (text) => {
      demo.commands.push(text);
      if (text.startsWith('fail')) throw new Error(`unknown command '${text}'`);
      return `ok: ${text}`;
    },
    complete: (text, cursor) => {
      const word = text.slice(0, cursor);
      return { start: 0, candidates: ['breakpoint', 'breakpoints', 'delete', 'detach', 'stack', 'locals'].filter((c) => c.startsWith(word)) };
    },
    statusRight: () => 'refresh 1s',
  });
  queue.setData(queueRows());
  tasks.setData(taskRows());
  cos.setData(coRows());
  stack.setRoots(stackRoots());
  hits.setData(hitRows());
  return demo;
}

const open: { term: Term; demo: Demo }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) { o.demo.shell.dispose(); o.term.dispose(); }
});

function start(cols: number, rows: number, opts: { color?: boolean; env?: NodeJS.ProcessEnv } = {}): { term: Term; tty: FakeTty; demo: Demo } {
  const { term, tty } = testTerm(cols, rows, opts);
  const demo = buildDemo(term);
  open.push({ term, demo });
  demo.shell.draw();
  return { term, tty, demo };
}

const GOLDEN = (name: string) => fileURLToPath(new URL(`./tui-golden/${name}`, import.meta.url));
const FRAME_RULE = (title: string) => `──── ${title} ────`;
// SGR colour parameters: 30–39, 40–49, 90–97, 100–107 (38;5;n and 48;5;n start with 38/48).
const COLOUR_SGR = /\x1b\[(?:[\d;]*;)?(?:3\d|4\d|9[0-7]|10[0-7])(?:;[\d;]*)?m/;

/** The frame after each step of `script` (a step: a label and its keys), as one golden text. */
async function film(tty: FakeTty, term: Term, demo: Demo, script: [string, string[]][]): Promise<string> {
  const { cols, rows } = term.size();
  const frames = [`${FRAME_RULE(`${cols}×${rows} start`)}\n${term.frame()}`];
  for (const [label, keys] of script) {
    await typeKeys(tty, keys);
    demo.shell.scheduler.flush();
    frames.push(`${FRAME_RULE(`${cols}×${rows} ${label}`)}\n${term.frame()}`);
  }
  return `${frames.join('\n')}\n`;
}

const selectedLine = (term: Term, from = 0) => term.frame().split('\n').slice(from).find((l) => l.startsWith('>')) ?? '';
const paneLines = (term: Term, demo: Demo, id: string) => {
  const r = demo.shell.lastLayout!.panes.get(id)!;
  return term.frame().split('\n').slice(r.y, r.y + r.height);
};

describe('golden frames', () => {
  it.each([[80, 24], [200, 60]])('%d×%d, first frame', (cols, rows) => {
    const { term } = start(cols, rows);
    const frame = `${term.frame()}\n`;
    expect(frame).toBe(golden(GOLDEN(`start-${cols}x${rows}.txt`), frame));
    for (const l of frame.split('\n')) expect(strWidth(l)).toBeLessThanOrEqual(cols);
  });

  it('80×24 without UTF-8 (TERM=linux, LANG=C): ASCII marks, same layout', () => {
    const { term } = start(80, 24, { env: { TERM: 'linux', LANG: 'C' } });
    const frame = `${term.frame()}\n`;
    expect(frame).toBe(golden(GOLDEN('start-80x24-ascii.txt'), frame));
    expect(frame).not.toMatch(/[▁▂▃▄▅▆▇█↓↑▾▸…│·]/);
  });

  it('80×24, a frame per key: focus, move, filter, help, expand, command line', async () => {
    const { term, tty, demo } = start(80, 24);
    const text = await film(tty, term, demo, [
      ['Tab Tab: coroutines', ['tab', 'tab']],
      ['j j', ['j', 'j']],
      ['/wait Enter', ['/', 'w', 'a', 'i', 't', 'enter']],
      ['/ C-u !wait Enter', ['/', 'C-u', '!', 'w', 'a', 'i', 't', 'enter']],
      ['Esc clears the filter', ['escape']],
      ['e expands', ['e']],
      ['Esc', ['escape']],
      ['Tab: stack, j j Enter expands opts', ['tab', 'j', 'j', 'enter']],
      ['?', ['?']],
      ['Esc', ['escape']],
      [':sta Tab', [':', 's', 't', 'a', 'tab']],
      ['Enter', ['enter']],
      ['H collapses the header, Space pauses', ['H', 'tab', 'space']],
    ]);
    expect(text).toBe(golden(GOLDEN('keys-80x24.txt'), text));
  });

  it('resize 200×60 → 80×24 → 120×40: re-laid out, every pane still readable', async () => {
    const { term, tty, demo } = start(200, 60);
    const frames: string[] = [];
    for (const [cols, rows] of [[80, 24], [120, 40]] as const) {
      tty.resize(cols, rows);
      expect(term.size()).toEqual({ cols, rows });
      const layout = demo.shell.lastLayout!;
      expect(layout.mode).toBe('stacked');
      expect(layout.hidden).toEqual([]);
      for (const [id, r] of layout.panes) {
        expect(r.x + r.width).toBeLessThanOrEqual(cols);
        expect(r.y + r.height).toBeLessThanOrEqual(rows - 2);
        expect(r.height).toBeGreaterThanOrEqual(3);
        const lines = paneLines(term, demo, id);
        // the title bar, then at least a column header or a first row
        expect(lines[0]).toContain({ queue: 'FFI queues', tasks: 'Tasks', cos: 'Coroutines', stack: 'Stack', hits: 'Hits' }[id]);
        expect(lines[1]!.trim().length).toBeGreaterThan(0);
      }
      frames.push(`${FRAME_RULE(`${cols}×${rows} after resize`)}\n${term.frame()}`);
    }
    const text = `${frames.join('\n')}\n`;
    expect(text).toBe(golden(GOLDEN('resize.txt'), text));
  });
});

describe('keys on a live screen', () => {
  it('moves the selection and keeps it on the same coroutine when the data re-sorts', async () => {
    const { term, tty, demo } = start(80, 24);
    await typeKeys(tty, ['tab', 'tab', 'j']);
    expect(demo.cos.selected?.id).toBe(21);
    demo.clock.now += 10_000; // past holdOrderMs
    const rows = coRows();
    rows.find((r) => r.id === 21)!.ageMs = 0.5; // now the youngest: sorts last
    rows.push({ id: 40, pid: 4243, kind: 'request', state: 'waiting', wait: 'ffi rocksdb#904', ageMs: 500_000, frame: 'app/new.lua:1 in f', req: '' });
    demo.cos.setData(rows);
    demo.shell.update();
    demo.shell.scheduler.flush();
    expect(demo.cos.selected?.id).toBe(21);
    expect(demo.cos.visible().map((r) => r.id)).toEqual([40, 5, 17, 31, 30, 22, 21]);
    const r = demo.shell.lastLayout!.panes.get('cos')!;
    expect(selectedLine(term, r.y)).toMatch(/^> +21 /);
  });

  it('filters with / and inverts with !', async () => {
    const { tty, demo } = start(80, 24);
    await typeKeys(tty, ['tab', 'tab', '/', 'w', 'a', 'i', 't', 'enter']);
    expect(demo.cos.visible().map((r) => r.id).sort((a, b) => a - b)).toEqual([17, 21, 22]);
    await typeKeys(tty, ['/', 'C-u', '!', 'w', 'a', 'i', 't', 'enter']);
    expect(demo.cos.visible().map((r) => r.id).sort((a, b) => a - b)).toEqual([5, 30, 31]);
    await typeKeys(tty, ['/', 'x', 'escape']);
    expect(demo.cos.filter?.text).toBe('!wait');
    await typeKeys(tty, ['escape']);
    expect(demo.cos.filter).toBeUndefined();
  });

  it('expands and collapses a tree node', async () => {
    const { term, tty, demo } = start(80, 24);
    await typeKeys(tty, ['tab', 'tab', 'tab', 'j', 'j']);
    expect(demo.stack.selected?.id).toBe('f0/opts');
    await typeKeys(tty, ['right']);
    demo.shell.scheduler.flush();
    expect(demo.stack.isOpen('f0/opts')).toBe(true);
    await typeKeys(tty, ['e']);
    demo.shell.scheduler.flush();
    expect(term.frame()).toContain('fit = "cover"');
    await typeKeys(tty, ['left']);
    demo.shell.scheduler.flush();
    expect(demo.stack.isOpen('f0/opts')).toBe(false);
    expect(term.frame()).not.toContain('fit = "cover"');
  });

  it('runs : commands with history, and says errors on the status line', async () => {
    const { term, tty, demo } = start(80, 24);
    await typeKeys(tty, [':', ...'stack 17'.split('').map((c) => (c === ' ' ? 'space' : c)), 'enter']);
    demo.shell.scheduler.flush();
    expect(demo.commands).toEqual(['stack 17']);
    expect(term.frame().split('\n')[22]).toMatch(/^ok: stack 17/);
    await typeKeys(tty, [':', 'f', 'a', 'i', 'l', 'enter']);
    demo.shell.scheduler.flush();
    expect(term.frame().split('\n')[22]).toMatch(/^error: unknown command 'fail'/);
    await typeKeys(tty, [':', 'up', 'up']);
    demo.shell.scheduler.flush();
    expect(term.frame().split('\n')[23]).toMatch(/^:stack 17/);
    await typeKeys(tty, ['down']);
    demo.shell.scheduler.flush();
    expect(term.frame().split('\n')[23]).toMatch(/^:fail/);
    await typeKeys(tty, ['escape']);
    demo.shell.scheduler.flush();
    expect(term.frame().split('\n')[23]).toMatch(/q quit/);
  });

  it('opens help with ? and closes it with Esc (and ?), the legend included', async () => {
    const { term, tty, demo } = start(80, 24);
    await typeKeys(tty, ['?']);
    demo.shell.scheduler.flush();
    expect(term.frame()).toContain('Help · Esc or ? closes');
    expect(term.frame()).toContain('past the alarm threshold');
    await typeKeys(tty, ['escape']);
    demo.shell.scheduler.flush();
    expect(term.frame()).not.toContain('Help · Esc or ? closes');
    await typeKeys(tty, ['?', 'j', '?']);
    demo.shell.scheduler.flush();
    expect(demo.shell.help.open).toBe(false);
    expect(demo.quits).toBe(0);
  });

  it('quits on q and C-c, pauses on Space with a banner', async () => {
    const { term, tty, demo } = start(80, 24);
    await typeKeys(tty, ['space']);
    demo.shell.scheduler.flush();
    expect(term.frame().split('\n')[0]).toMatch(/ PAUSED$/);
    await typeKeys(tty, ['q', 'C-c']);
    expect(demo.quits).toBe(2);
  });

  it('coalesces many updates in a tick into one render', async () => {
    const { demo } = start(80, 24);
    const before = demo.shell.scheduler.renders;
    for (let i = 0; i < 20; i++) {
      demo.queue.setData(queueRows());
      demo.cos.setData(coRows());
      demo.shell.update();
    }
    await new Promise((r) => setImmediate(r));
    expect(demo.shell.scheduler.renders).toBe(before + 1);
  });

  it('NO_COLOR: bold and reverse only, no colour code anywhere', async () => {
    const { term, tty, demo } = start(80, 24, { env: { TERM: 'xterm-256color', LANG: 'C.UTF-8', NO_COLOR: '1' } });
    await typeKeys(tty, ['?']);
    demo.shell.scheduler.flush();
    for (const shot of [term.screenshot()]) {
      expect(shot).not.toMatch(COLOUR_SGR);
      expect(shot).toMatch(/\x1b\[[\d;]*7[;m]/);
      expect(shot).toMatch(/\x1b\[[\d;]*1[;m]/);
    }
    const coloured = start(80, 24);
    expect(coloured.term.screenshot()).toMatch(COLOUR_SGR);
  });
});
