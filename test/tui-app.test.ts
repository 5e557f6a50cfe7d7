// `nffi-inspect attach` (tui/app.ts) on injected streams against a fake nginx behind the fake
// client (test/tui-app-world.ts): golden frames at 80×24 and 200×60 with a fake clock (pids,
// times and ages are the world's, the same on every run; a missing golden fails, UPDATE_GOLDEN=1
// writes it), a frame per key through a drill, and key sequences: filter, sort, pause and step
// back, task → stack → a frame's locals → back, coroutine ↔ task, :breakpoint and its hits,
// q removing this session's breakpoints, a signal, workers leaving and joining, probe errors.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startAttach, type AttachApp, type AttachOptions } from '../tui/app.js';
import { strWidth } from '../tui/text.js';
import { fakeTty, golden, TEST_ENV, typeKeys, type FakeTty } from '../tui/testing.js';
import { TermError } from '../tui/term.js';
import { T0, World, type WorldOptions } from './tui-app-world.js';

const GOLDEN = (name: string) => fileURLToPath(new URL(`./tui-golden/${name}`, import.meta.url));
const RULE = (title: string) => `──── ${title} ────`;

interface Running { app: AttachApp; world: World; tty: FakeTty }
const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.app.quit();
});

async function start(cols: number, rows: number, opts: Partial<AttachOptions> & { world?: WorldOptions; samples?: number } = {}): Promise<Running> {
  const world = new World(opts.world);
  world.client.listed = [{ id: 7, spec: { url: 'app/handler.lua', line: 42, condition: 'n > 3' }, state: 'armed', hits: 0, dropped: 0, workers: [] }];
  const tty = fakeTty(cols, rows);
  const app = await startAttach({
    pid: 100, client: world.client, input: tty.input, output: tty.output, env: TEST_ENV,
    now: world.now, utc: true, manual: true, processHooks: false, ...opts,
  });
  const r = { app, world, tty };
  running.push(r);
  for (let i = 0; i < (opts.samples ?? 8); i++) {
    world.advance();
    await app.sample();
  }
  return r;
}

/** Keys, then whatever they started (a stack request) settled, then a draw. */
async function keys(r: Running, ...ks: string[]): Promise<void> {
  await typeKeys(r.tty, ks);
  await new Promise((resolve) => setImmediate(resolve));
  r.app.flush();
}

const frame = (r: Running): string => r.app.term.frame();
const row = (r: Running, re: RegExp): string => frame(r).split('\n').find((l) => re.test(l)) ?? '';
/** The status line (the row above the footer). */
const status = (r: Running): string => frame(r).split('\n')[r.app.term.size().rows - 2] ?? '';
const selected = (r: Running, pane: string): string => {
  const rect = r.app.shell.lastLayout!.panes.get(pane)!;
  return frame(r).split('\n').slice(rect.y, rect.y + rect.height).find((l) => l.startsWith('>')) ?? '';
};

function hits(r: Running, n: number, id = 7): void {
  for (let i = 0; i < n; i++) {
    r.world.advance(10);
    r.world.hit(id, 101 + (i % 2), i + 1);
  }
  r.app.flush();
}

describe('golden frames', () => {
  it.each([[80, 24], [200, 60]])('%d×%d: header, queues with sparklines, tasks, coroutines, hits', async (cols, rows) => {
    const r = await start(cols, rows);
    hits(r, 3);
    const text = `${frame(r)}\n`;
    expect(text).toBe(golden(GOLDEN(`attach-${cols}x${rows}.txt`), text));
    for (const l of text.split('\n')) expect(strWidth(l)).toBeLessThanOrEqual(cols);
  });

  it('80×24, a frame per key: drill from a task to its stack and a frame\'s locals, filter, pause, help', async () => {
    const r = await start(80, 24);
    hits(r, 2);
    const frames = [`${RULE('80×24 start')}\n${frame(r)}`];
    const script: [string, string[]][] = [
      ['Tab: tasks', ['tab']],
      ['Enter: the waiting coroutine\'s stack, its first Lua frame open', ['enter']],
      ['j j Enter: opts, G k Enter: upvalues', ['j', 'j', 'enter', 'G', 'k', 'enter']],
      ['Esc: back to tasks', ['escape']],
      ['Tab: coroutines, /ffi Enter', ['tab', '/', 'f', 'f', 'i', 'enter']],
      ['w: the task it waits on', ['w']],
      ['Space: paused, two samples later still the same', ['space']],
      ['← ←: two samples back', ['left', 'left']],
      ['Space: live again; Tab Tab Tab: hits, Enter: the snapshot', ['space', 'tab', 'tab', 'tab', 'enter']],
      ['Esc: back to the hits', ['escape']],
      ['?: help with the legend', ['?']],
    ];
    for (const [label, ks] of script) {
      await keys(r, ...ks);
      if (label.startsWith('Space')) {
        for (let i = 0; i < 2; i++) {
          r.world.advance();
          await r.app.sample();
        }
        r.app.flush();
      }
      frames.push(`${RULE(`80×24 ${label}`)}\n${frame(r)}`);
    }
    const text = `${frames.join('\n')}\n`;
    expect(text).toBe(golden(GOLDEN('attach-keys-80x24.txt'), text));
  });
});

describe('keys', () => {
  it('/ filters coroutines on kind, state, wait, request or function text; ! inverts; Esc clears', async () => {
    const r = await start(200, 60);
    await keys(r, 'tab', 'tab');
    expect(r.app.shell.focused.id).toBe('cos');
    const cos = r.app.screen.cos.table;
    await keys(r, '/', ...'ffi', 'enter');
    expect(new Set(cos.visible().map((c) => c.wait?.kind))).toEqual(new Set(['ffi']));
    expect(cos.visible()).toHaveLength(6);
    await keys(r, '/', 'C-u', ...'!ffi', 'enter');
    expect(cos.visible().some((c) => c.wait?.kind === 'ffi')).toBe(false);
    // the dead coroutine of each worker is hidden until `a`
    expect(cos.visible()).toHaveLength(6);
    expect(r.app.screen.cos.info()).toMatch(/2 dead\/unstarted hidden \(a\)/);
    await keys(r, 'a');
    expect(cos.visible()).toHaveLength(8);
    expect(cos.visible().filter((c) => c.state === 'dead')).toHaveLength(2);
    await keys(r, 'a');
    expect(cos.visible()).toHaveLength(6);
    await keys(r, '/', 'C-u', ...'health.lua', 'enter');
    expect(cos.visible().map((c) => `${c.pid}:${c.id}`)).toEqual(['101:3', '102:3']);
    await keys(r, '/', 'C-u', ...'POST', 'enter');
    expect(cos.visible().map((c) => c.id)).toEqual([11, 11]);
    await keys(r, 'escape');
    expect(cos.filter).toBeUndefined();
    expect(cos.visible()).toHaveLength(12);
  });

  it('one letter per sort column, I inverts; the selection stays on the same coroutine across samples', async () => {
    const r = await start(200, 60);
    await keys(r, 'tab', 'tab', 'a', 's');
    const cos = r.app.screen.cos.table;
    expect(cos.sort).toEqual({ column: 'state', descending: false });
    expect(cos.visible()[0]!.state).toBe('dead');
    await keys(r, 'I');
    expect(cos.visible()[0]!.state).toBe('suspended');
    await keys(r, 'i');
    expect(cos.visible()[0]!.id).toBe(3);
    await keys(r, 'j', 'j', 'j');
    const chosen = cos.selected!;
    r.world.advance(10_000);
    for (let i = 0; i < 4; i++) await r.app.sample();
    expect(cos.selected).toMatchObject({ pid: chosen.pid, id: chosen.id });
    expect(selected(r, 'cos')).toContain(String(chosen.id));
  });

  it('Space pauses while sampling goes on; ← and → step through the samples; Space again is live', async () => {
    const r = await start(200, 60);
    const depth = () => r.app.screen.queue.table.visible().find((q) => q.key === '101/imgresize')!.depth;
    const live = depth();
    await keys(r, 'space');
    expect(frame(r).split('\n')[0]).toMatch(/ PAUSED$/);
    for (let i = 0; i < 3; i++) {
      r.world.advance();
      await r.app.sample();
    }
    r.app.flush();
    expect(depth()).toBe(live);
    // the first sample when attaching, 8, then 3 while paused
    expect(r.app.sampler!.history.length).toBe(12);
    expect(status(r)).toMatch(/sample 9\/12 -1\.5s/);
    await keys(r, 'left');
    const back1 = depth();
    expect(back1).not.toBe(live);
    await keys(r, 'left', 'left');
    expect(status(r)).toMatch(/sample 6\/12 -3\.0s/);
    await keys(r, 'right', 'right');
    expect(depth()).toBe(back1);
    await keys(r, 'space');
    expect(frame(r).split('\n')[0]).not.toMatch(/PAUSED/);
    const latest = r.app.store!.queue.state!.workers.find((w) => w.pid === 101)!.runtimes.find((q) => q.name === 'imgresize')!.depth;
    expect(depth()).toBe(latest);
    expect(status(r)).not.toMatch(/sample \d+\//);
  });

  it('← while live pauses one sample back; hits that came later are not shown while paused', async () => {
    const r = await start(200, 60);
    hits(r, 2);
    await r.app.sample();
    await keys(r, 'left');
    expect(r.app.shell.paused).toBe(true);
    expect(r.app.screen.hits.table.counts.total).toBe(0);
    await keys(r, 'right');
    expect(r.app.screen.hits.table.counts.total).toBe(2);
    hits(r, 3);
    expect(r.app.screen.hits.table.counts.total).toBe(2);
    await keys(r, 'space');
    expect(r.app.screen.hits.table.counts.total).toBe(5);
  });

  it('drills from a task into its coroutine\'s stack, a frame\'s locals, and back out with Esc', async () => {
    const r = await start(80, 24);
    await keys(r, 'tab');
    const task = r.app.screen.tasks.table.selected!;
    expect(task.coroutine).not.toBeNull();
    await keys(r, 'enter');
    expect(r.app.shell.focused.id).toBe('stack');
    const call = r.world.client.calls.filter((c) => c.method === 'Lua.getStack').at(-1)!;
    expect(call).toMatchObject({ pid: task.pid, params: { coroutine: task.coroutine!.id, locals: true } });
    // the first Lua frame is open and selected (#0 is the C function it yields in); at 24
    // rows the stack takes the whole body
    expect(r.app.screen.stack.tree.selected?.id).toBe(`${task.pid}:${task.coroutine!.id}/f1`);
    expect(r.app.shell.expanded).toBe(true);
    expect(frame(r)).toContain('w = 640');
    expect(frame(r)).toContain('upvalues = 1');
    await keys(r, 'j', 'j', 'enter');
    expect(frame(r)).toContain('fit = "cover"');
    await keys(r, 'escape');
    expect(r.app.shell.focused.id).toBe('tasks');
    expect(r.app.shell.expanded).toBe(false);
    expect(r.app.screen.tasks.table.selected).toEqual(task);
    expect(selected(r, 'tasks')).toContain(String(task.id));
  });

  it('w jumps from a coroutine to the FFI task it waits on and back', async () => {
    const r = await start(200, 60);
    await keys(r, 'tab', 'tab', '/', ...'task 102002', 'enter');
    expect(r.app.screen.cos.table.selected).toMatchObject({ pid: 102, id: 21 });
    await keys(r, 'w');
    expect(r.app.shell.focused.id).toBe('tasks');
    expect(r.app.screen.tasks.table.selected).toMatchObject({ pid: 102, id: 102002 });
    await keys(r, 'j');
    const next = r.app.screen.tasks.table.selected!;
    expect(next.id).not.toBe(102002);
    await keys(r, 'w');
    expect(r.app.shell.focused.id).toBe('cos');
    // the filter that hid it is cleared
    expect(r.app.screen.cos.filter).toBeUndefined();
    expect(r.app.screen.cos.table.selected).toMatchObject({ pid: next.pid, id: next.coroutine!.id });
  });

  it(':breakpoint goes to the client with its condition as typed; its hits appear, newest first; Enter opens the snapshot', async () => {
    const r = await start(200, 60);
    await keys(r, ':', ...'breakpoint app/handler.lua:42 if ctx.user == "bob" and n > 3 --count 5', 'enter');
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.world.specs).toEqual([{ url: 'app/handler.lua', line: 42, condition: 'ctx.user == "bob" and n > 3', count: 5, timeout_ms: 600_000 }]);
    r.app.flush();
    expect(row(r, /^bp 1 set|bp 1 armed/)).toMatch(/bp 1/);
    hits(r, 4, 1);
    const table = r.app.screen.hits.table;
    expect(table.visible().map((h) => h.hit.locals?.n?.value)).toEqual([4, 3, 2, 1]);
    expect(table.selected?.hit.locals?.n?.value).toBe(4);
    expect(frame(r)).toMatch(/bp 1 app\/handler\.lua:42 if … 4 hits/);
    await keys(r, 'tab', 'tab', 'tab', 'tab', 'enter');
    expect(r.app.shell.focused.id).toBe('stack');
    expect(frame(r)).toContain('Hit snapshot');
    expect(frame(r)).toContain('request = GET /items/4');
    expect(frame(r)).toMatch(/n = 4/);
    await keys(r, ':', ...'delete 1', 'enter');
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.world.removed).toEqual([1]);
  });

  it(':breakpoint ffi:RT.METHOD, errors on the status line, history with ↑', async () => {
    const r = await start(80, 24);
    await keys(r, ':', ...'breakpoint ffi:imgresize.resize', 'enter');
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.world.specs.at(-1)).toMatchObject({ url: 'ffi:imgresize.resize' });
    await keys(r, ':', ...'breakpoint nowhere', 'enter');
    expect(frame(r).split('\n')[22]).toMatch(/^error: invalid location 'nowhere'/);
    await keys(r, ':', ...'frobnicate', 'enter');
    expect(frame(r).split('\n')[22]).toMatch(/^error: unknown command 'frobnicate'/);
    await keys(r, ':', 'up', 'up');
    expect(frame(r).split('\n')[23]).toMatch(/^:breakpoint nowhere/);
    await keys(r, 'escape', ':', ...'stack 5 102', 'enter');
    expect(r.world.client.calls.at(-1)).toMatchObject({ pid: 102, method: 'Lua.getStack', params: { coroutine: 5 } });
    // co 5 is on both workers: the one of the selected coroutine
    await keys(r, ':', ...'stack 5', 'enter');
    expect(r.world.client.calls.at(-1)).toMatchObject({ pid: 101, method: 'Lua.getStack', params: { coroutine: 5 } });
    await keys(r, ':', ...'stack 999', 'enter');
    expect(frame(r).split('\n')[22]).toMatch(/^error: co 999 is not in the last walk of any worker/);
    await keys(r, ':', ...'locals 21 1 101', 'enter');
    expect(r.app.screen.stack.tree.selected?.id).toBe('101:21/f1');
    expect(frame(r)).toContain('opts = {fit="cover", quality=85}');
  });

  it('Tab completes commands and file names seen in frames', async () => {
    const r = await start(80, 24);
    await keys(r, ':', 'b', 'r', 'tab');
    expect(r.app.shell.cmdline.editor.text).toBe('breakpoint');
    await keys(r, 'space', ...'heal', 'tab');
    expect(r.app.shell.cmdline.editor.text).toBe('breakpoint health.lua:');
    await keys(r, 'C-u', ...'breakpoint ffi:im', 'tab');
    expect(r.app.shell.cmdline.editor.text).toBe('breakpoint ffi:imgresize.');
  });

  it('q removes the breakpoints this session set (not others), restores the terminal, closes the client', async () => {
    const r = await start(80, 24);
    await keys(r, ':', ...'breakpoint a.lua:1', 'enter');
    await keys(r, ':', ...'breakpoint b.lua:2 --log n={n}', 'enter');
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.app.screen.mine).toEqual(new Set([1, 2]));
    await keys(r, 'q');
    const exit = await r.app.done;
    expect(exit).toEqual({ code: 0, how: 'quit' });
    expect(r.world.removed.sort()).toEqual([1, 2]);
    expect(r.world.closed).toBe(1);
    expect(r.app.term.disposed).toBe(true);
    expect(r.tty.written()).toContain('\x1b[?1049l');
    expect(r.world.client.held()).toEqual({ target: 0, breakpoint: 0, end: 0 });
  });

  it('a signal removes the breakpoints and closes the client before the process ends as it asks', async () => {
    const ended: [string, number][] = [];
    const r = await start(80, 24, { onSignal: (sig, code) => ended.push([sig, code]) });
    await keys(r, ':', ...'breakpoint a.lua:1', 'enter');
    await new Promise((resolve) => setImmediate(resolve));
    await r.app.signal('SIGTERM');
    expect(ended).toEqual([['SIGTERM', 143]]);
    expect(r.world.removed).toEqual([1]);
    expect(r.world.closed).toBe(1);
    expect(await r.app.done).toEqual({ code: 143, how: 'signal' });
  });

  it('a hung probe cannot hold the terminal: each step out has a deadline', async () => {
    const r = await start(80, 24, { exitTimeoutMs: 50 });
    await keys(r, ':', ...'breakpoint a.lua:1', 'enter');
    await new Promise((resolve) => setImmediate(resolve));
    r.world.client.removeImpl = () => new Promise(() => undefined);
    r.world.client.close = () => new Promise(() => undefined);
    const t0 = Date.now();
    await r.app.quit();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(r.app.term.disposed).toBe(true);
  });
});

describe('workers and errors', () => {
  it('a worker that exits and one that replaces it (a reload) are shown as such', async () => {
    const r = await start(200, 60);
    r.world.client.workers = r.world.client.workers.filter((w) => w.pid !== 102);
    r.world.client.target.emit({ event: 'detached', pid: 102, reason: 'exited' });
    r.world.client.workers.push({ ...r.world.client.workers[0]!, pid: 103, worker_id: 1 });
    r.world.client.target.emit({ event: 'attached', target: r.world.client.workers[1]! });
    r.world.advance();
    await r.app.sample();
    r.app.flush();
    const head = frame(r).split('\n').slice(0, 2).join('\n');
    expect(head).toMatch(/102 gone: exited/);
    expect(head).toMatch(/workers 101 103/);
    expect(r.app.screen.queue.table.visible().map((q) => q.pid)).not.toContain(102);
    expect(r.app.term.screenshot().split('\n')[1]).toMatch(/\x1b\[[\d;]*36m[^\x1b]*103/);
  });

  it('a probe error goes to the status line, never a crash; a whole request failing too', async () => {
    const r = await start(80, 24);
    r.world.failRuntimes = 102;
    r.world.advance();
    await r.app.sample();
    r.app.flush();
    expect(frame(r).split('\n')[22]).toMatch(/^error: worker 102: agent busy: 64 requests queued/);
    r.world.client.handlers['FFI.getTasks'] = () => { throw new Error('boom'); };
    r.world.client.callAll = async () => { throw new Error(`no worker of 100 is attached`); };
    r.world.advance();
    await r.app.sample();
    r.app.flush();
    expect(frame(r).split('\n')[22]).toMatch(/^error: (queue|tasks|workers|coroutines): no worker of 100 is attached/);
    expect(r.app.stats().sampleErrors).toBeGreaterThan(0);
  });

  it('the end of the session is said, sampling stops, q still quits', async () => {
    const r = await start(80, 24);
    r.world.client.end.emit('nginx 100 exited');
    r.app.flush();
    expect(frame(r).split('\n')[22]).toMatch(/^error: the session ended: nginx 100 exited/);
    const before = r.app.stats().samples;
    await r.app.sample();
    expect(r.app.stats().samples).toBe(before);
    await keys(r, 'q');
    expect((await r.app.done).code).toBe(0);
  });
});

describe('not a terminal', () => {
  it('TERM=dumb or a pipe: a TermError naming the one-shot commands, and nothing attached', async () => {
    const world = new World();
    const tty = fakeTty(80, 24);
    await expect(startAttach({ pid: 100, client: world.client, input: tty.input, output: tty.output, env: { TERM: 'dumb' }, processHooks: false }))
      .rejects.toThrow(TermError);
    const pipe = fakeTty(80, 24);
    pipe.output.isTTY = false;
    await expect(startAttach({ pid: 100, client: world.client, input: pipe.input, output: pipe.output, env: TEST_ENV, processHooks: false }))
      .rejects.toThrow(/one-shot commands/);
    expect(world.client.calls).toEqual([]);
  });
});

describe('under load (8 workers, 10,000 pending tasks each, a flood of hits)', () => {
  it('pages tasks, bounds every buffer and counts what it dropped, answers keys quickly', async () => {
    const r = await start(200, 60, { world: { workers: 8, tasksPerWorker: 10_000 }, samples: 2, keepHits: 1_000 });
    const pages = r.world.client.calls.filter((c) => c.method === 'FFI.getTasks');
    expect(Math.max(...pages.map((c) => (c.params as { max: number }).max))).toBeLessThanOrEqual(100);
    for (let i = 0; i < 3_000; i++) r.world.hit(7, 101 + (i % 8), i);
    r.app.flush();
    const s = r.app.stats();
    expect(s.dropped.hits).toBe(2_000);
    expect(s.dropped.tasksNotListed).toBeGreaterThan(70_000);
    expect(r.app.screen.hits.table.counts.total).toBe(1_000);
    expect(frame(r)).toMatch(/2000 past the buffer/);
    expect(status(r)).toMatch(/tasks not listed/);
    // the coroutines of a quarter of the workers per tick
    const walks = r.world.client.calls.filter((c) => c.method === 'Lua.getCoroutines').length;
    expect(walks).toBe(2 * 3);
    for (const k of ['tab', 'tab', 'j', 'j', 'tab', 'j', 'G', 'g']) {
      r.world.hit(7, 101, 1);
      await keys(r, k);
    }
    expect(r.app.stats().maxKeyMs).toBeLessThan(100);
    expect(r.app.stats().renders).toBeGreaterThan(0);
  });

  it('keeps full snapshots only for the newest hits: older rows stay as a line, Enter on one says its snapshot went, stats count it', async () => {
    const r = await start(200, 60, { keepHits: 100 });
    // a hostile request's snapshot: 1,000 entries of 256-byte keys and values (~0.6 MB)
    const big = {
      type: 'table' as const,
      entries: Array.from({ length: 1_000 }, (_, i) => ({ key: { type: 'string' as const, value: `${i}`.padEnd(256, 'k') }, value: { type: 'string' as const, value: 'v'.repeat(256) } })),
    };
    const one = JSON.stringify({ upvalues: { big } }).length;
    for (let i = 0; i < 120; i++) {
      r.world.advance(10);
      r.world.hit(7, 101, i + 1, { upvalues: { big: { ...big, entries: big.entries.map((e) => ({ key: { ...e.key }, value: { ...e.value } })) } } });
    }
    r.app.flush();
    const s = r.app.stats();
    expect(s.dropped.hits).toBe(20);
    expect(s.dropped.hitSnapshots).toBe(70);
    const rows = r.app.screen.hits.table.visible();
    expect(rows).toHaveLength(100);
    expect(rows.filter((h) => h.full).map((h) => h.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 119 - i));
    // what the rows hold is bounded by the snapshots kept, not by the rows
    const held = rows.reduce((n, h) => n + JSON.stringify(h.hit).length, 0);
    expect(held).toBeLessThan(51 * one);
    expect(held).toBeGreaterThan(50 * one);
    // an old row still shows what it showed: where, the locals' line, the request
    await keys(r, 'tab', 'tab', 'tab', 'tab', 'G');
    expect(r.app.shell.focused.id).toBe('hits');
    expect(row(r, /n=21 user/)).toMatch(/handler\.lua:42 .*n=21 user="bob".*GET \/items\/21/);
    expect(r.app.screen.hits.table.selected).toMatchObject({ seq: 20, full: false });
    await keys(r, 'enter');
    expect(r.app.shell.focused.id).toBe('hits');
    expect(status(r)).toMatch(/snapshot of this hit was dropped to bound memory/);
    // / still finds it by its locals' line
    await keys(r, '/', ...'n=21 ', 'enter');
    expect(r.app.screen.hits.table.visible().map((h) => h.seq)).toEqual([20]);
    await keys(r, 'escape');
    // a recent one opens
    await keys(r, 'g', 'enter');
    expect(r.app.shell.focused.id).toBe('stack');
    expect(frame(r)).toContain('request = GET /items/120');
  });

  it('the history keeps the last 60 s within its row budget', async () => {
    const r = await start(80, 24, { samples: 130 });
    const s = r.app.stats();
    expect(s.history.samples).toBe(121);
    const h = r.app.sampler!.history;
    expect(h.latest!.at - h.at(0)!.at).toBe(60_000);
  });
});

void T0;
