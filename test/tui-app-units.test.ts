// The parts of `attach` below the screen, on plain data: the command line's words (a condition
// kept as typed, options, errors), thresholds, the sampled history's window and row budget, a
// coroutine walk of a few workers at a time, the sampler's one-request-per-kind rule, and the
// queue rows summed over workers.
import { defaultFrameRule } from '../store/frames.js';
import { describe, expect, it } from 'vitest';
import { CoroutinesView } from '../store/coroutines.js';
import { Store } from '../store/store.js';
import { breakpointSpec, completer, tokens, type CommandHost } from '../tui/commands.js';
import type { HitEvent } from '../tui/panes/common.js';
import type { PaneHost } from '../tui/panes/common.js';
import { CoroutinesPane } from '../tui/panes/coroutines.js';
import { TasksPane } from '../tui/panes/tasks.js';
import { HitRing } from '../tui/panes/hits.js';
import { stackFrameNode } from '../tui/panes/values.js';
import { makeTheme } from '../tui/style.js';
import { aggregate, QueuePane, type QueueRow } from '../tui/panes/queue.js';
import { History, Sampler, type Snapshot } from '../tui/sampler.js';
import { DEFAULT_THRESHOLDS, depthLevel, scaled, thresholds } from '../tui/thresholds.js';
import { FakeClient } from './harness/fake-client.js';
import { World } from './tui-app-world.js';

const spec = (line: string) => breakpointSpec(line, tokens(line));

describe('command line words', () => {
  it.each([
    ['breakpoint app.lua:42', { url: 'app.lua', line: 42, timeout_ms: 600_000 }],
    ['b app.lua:42 if n > 3 and ctx.user == "bob"', { url: 'app.lua', line: 42, condition: 'n > 3 and ctx.user == "bob"', timeout_ms: 600_000 }],
    ['bp =content_by_lua(nginx.conf:40):3 if x --count 2', { url: '=content_by_lua(nginx.conf:40)', line: 3, condition: 'x', count: 2, timeout_ms: 600_000 }],
    ["breakpoint h.lua:9 --log 'n={n} user={ctx.user}' --rate 5/s --timeout 30s", { url: 'h.lua', line: 9, log: 'n={n} user={ctx.user}', rate: 5, timeout_ms: 30_000 }],
    ['breakpoint h.lua:9 --count=3', { url: 'h.lua', line: 9, count: 3, timeout_ms: 600_000 }],
    ['breakpoint ffi:imgresize.* if #req > 1000', { url: 'ffi:imgresize.*', condition: '#req > 1000', timeout_ms: 600_000 }],
    // a quoted word is never an option, whatever it says
    ['breakpoint app.lua:10 if uri == "--rate"', { url: 'app.lua', line: 10, condition: 'uri == "--rate"', timeout_ms: 600_000 }],
    ["breakpoint app.lua:10 if a == '--count' or b == \"--log=x\" --count 2", { url: 'app.lua', line: 10, condition: "a == '--count' or b == \"--log=x\"", count: 2, timeout_ms: 600_000 }],
    // \" inside quotes is a quote; the condition is kept as typed
    ['breakpoint app.lua:10 if s == "a\\"b" --count 2', { url: 'app.lua', line: 10, condition: 's == "a\\"b"', count: 2, timeout_ms: 600_000 }],
    ["breakpoint app.lua:10 if s == 'it\\'s' and p == \"C:\\\\\"", { url: 'app.lua', line: 10, condition: "s == 'it\\'s' and p == \"C:\\\\\"", timeout_ms: 600_000 }],
    ['breakpoint h.lua:9 --log "said \\"{n}\\" \\\\o/ \\n"', { url: 'h.lua', line: 9, log: 'said "{n}" \\o/ \\n', timeout_ms: 600_000 }],
  ])('%s', (line, want) => {
    expect(spec(line)).toEqual(want);
  });

  it.each([
    ['breakpoint', /FILE:LINE/],
    ['breakpoint app.lua', /invalid location/],
    ['breakpoint app.lua:1 n > 3', /a condition starts with 'if'/],
    ['breakpoint app.lua:1 if', /'if' needs a condition/],
    ['breakpoint app.lua:1 --count', /--count needs a value/],
    ['breakpoint app.lua:1 --count 0', /invalid --count/],
    ['breakpoint app.lua:1 --count 2 if x', /goes right after the location, before the options/],
    ['breakpoint app.lua:1 if x --count 2 y', /the condition goes before them/],
    ['breakpoint app.lua:1 --log "unclosed', /unclosed "/],
  ])('%s: %s', (line, err) => {
    expect(() => spec(line)).toThrow(err);
  });

  it('tokens keep where each word was; quotes group and go', () => {
    expect(tokens(`a "b c"  'd'e`)).toEqual([{ text: 'a', start: 0, end: 1 }, { text: 'b c', start: 2, end: 7 }, { text: 'de', start: 9, end: 13 }]);
  });

  it('completion never puts a chunk name\'s control characters (or words it would split into) on the command line', () => {
    const host = {
      sources: () => ['/srv/app/handler.lua', '/srv/app/\x1b]0;pwned\x07.lua', '/srv/app/h\u202eaul.lua', '/srv/app/has space.lua', '/srv/app/h"q.lua', '/srv/app/h\nx.lua'],
      runtimes: () => [],
      hits: { state: { breakpoints: [] } },
    } as unknown as CommandHost;
    const complete = completer(host);
    expect(complete('breakpoint /srv/app/', 20)).toEqual({ start: 11, candidates: ['/srv/app/handler.lua:'] });
    expect(complete('breakpoint h', 12)).toEqual({ start: 11, candidates: ['handler.lua:'] });
    expect(complete('breakpoint \x1b', 12)).toEqual({ start: 11, candidates: [] });
  });

  it('completes command names, file names seen (by path or base name), ffi runtimes, breakpoint ids', () => {
    const host = {
      sources: () => ['/srv/app/handler.lua', '/srv/app/health.lua', '=content_by_lua(nginx.conf:40)'],
      runtimes: () => ['echo', 'imgresize'],
      hits: { state: { breakpoints: [{ id: 3, hits: 0, dropped: 0, workers: [] }, { id: 4, hits: 0, dropped: 0, workers: [], ended: 'count' }] } },
    } as unknown as CommandHost;
    const complete = completer(host);
    expect(complete('br', 2)).toEqual({ start: 0, candidates: ['breakpoint', 'breakpoints'] });
    expect(complete('breakpoint h', 12)).toEqual({ start: 11, candidates: ['handler.lua', 'health.lua'] });
    expect(complete('breakpoint han', 14)).toEqual({ start: 11, candidates: ['handler.lua:'] });
    expect(complete('breakpoint /srv/app/h', 21)).toEqual({ start: 11, candidates: ['/srv/app/handler.lua', '/srv/app/health.lua'] });
    expect(complete('breakpoint =c', 13)).toEqual({ start: 11, candidates: ['=content_by_lua(nginx.conf:40):'] });
    expect(complete('breakpoint ffi:i', 16)).toEqual({ start: 11, candidates: ['ffi:imgresize.'] });
    expect(complete('delete ', 7)).toEqual({ start: 7, candidates: ['3'] });
    expect(complete('stack 1', 7)).toBeUndefined();
  });
});

describe('the hit ring', () => {
  const hit = (n: number): HitEvent => ({
    event: 'hit', id: 1, pid: 101, time: n, source: '/srv/app/handler.lua', line: 42,
    frames: [{ function: 'handle', source: '/srv/app/handler.lua', line: 42, what: 'Lua' }],
    locals: { n: { type: 'number', value: n } }, upvalues: {}, varargs: [], request: { method: 'GET', uri: `/items/${n}` },
  });

  it('holds `capacity` rows, full snapshots only for the newest `snapshots`, and counts both drops', () => {
    const ring = new HitRing(5, 2);
    for (let n = 0; n < 7; n++) ring.push(hit(n));
    expect(ring.total).toBe(7);
    expect(ring.dropped).toBe(2);
    expect(ring.snapshotsDropped).toBe(5);
    const items = ring.before(7);
    expect(items.map((h) => [h.seq, h.full])).toEqual([[2, false], [3, false], [4, false], [5, true], [6, true]]);
    expect(items[0]!.hit).toEqual({ event: 'hit', id: 1, pid: 101, time: 2, source: '/srv/app/handler.lua', line: 42, frames: [], request: { method: 'GET', uri: '/items/2' } });
    expect(items[0]!.summary).toBe('n=2');
    expect(items[4]!.hit).toEqual(hit(6));
    // a paused view (before an earlier hit) sees the same rows
    expect(ring.before(4).map((h) => h.seq)).toEqual([2, 3]);
  });

  it('more snapshots than rows: every row held is full', () => {
    const ring = new HitRing(3, 50);
    for (let n = 0; n < 5; n++) ring.push(hit(n));
    expect(ring.before(5).map((h) => h.full)).toEqual([true, true, true]);
    expect(ring.snapshotsDropped).toBe(2);
  });
});

describe('thresholds', () => {
  it('defaults, overrides, a warn above the default bad raises the bad', () => {
    expect(thresholds()).toEqual(DEFAULT_THRESHOLDS);
    expect(thresholds({ warnDepth: 5000 })).toMatchObject({ warnDepth: 5000, badDepth: 5000 });
    expect(thresholds({ warnDepth: 50, badDepth: 20 })).toMatchObject({ warnDepth: 20, badDepth: 20 });
    expect(thresholds({ warnP99: 1, badP99: 2 })).toMatchObject({ warnP99: 1, badP99: 2 });
  });

  it('a full queue is bad whatever the thresholds say; [ ] { } halve and double', () => {
    const t = thresholds({ warnDepth: 100, badDepth: 1000 });
    expect(depthLevel(50, 4096, t)).toBe('ok');
    expect(depthLevel(100, 4096, t)).toBe('warn');
    expect(depthLevel(64, 64, t)).toBe('bad');
    expect(scaled(t, 'depth', 0.5)).toMatchObject({ warnDepth: 50, badDepth: 500 });
    expect(scaled(t, 'p99', 2)).toMatchObject({ warnP99: 20, badP99: 200 });
  });
});

const snap = (seq: number, at: number, rows: { tasks?: unknown[]; cos?: unknown[] }): Snapshot => ({
  seq, at, queue: undefined, hits: 0,
  tasks: (rows.tasks ?? []) as Snapshot['tasks'], coroutines: (rows.cos ?? []) as Snapshot['coroutines'],
});

describe('the sampled history', () => {
  it('keeps the last window of samples', () => {
    const h = new History(1_000, 1e9);
    for (let i = 0; i < 10; i++) h.push(snap(i + 1, i * 250, {}));
    expect(h.length).toBe(5);
    expect(h.at(0)!.at).toBe(1_250);
    expect(h.indexOf(8)).toBe(2);
    expect(h.indexOf(2)).toBe(-1);
  });

  it('counts rows shared by consecutive samples once, and lets samples go early past its row budget', () => {
    const h = new History(60_000, 250);
    const a = { pid: 1, coroutines: new Array(100).fill(0) };
    const b = { pid: 2, tasks: new Array(100).fill(0), total: 100, truncated: false };
    h.push(snap(1, 0, { cos: [a], tasks: [b] }));
    expect(h.rowsHeld).toBe(200);
    // the same coroutine walk (not sampled again), a new task page
    const b2 = { ...b, tasks: new Array(100).fill(0) };
    h.push(snap(2, 500, { cos: [a], tasks: [b2] }));
    // 300 rows held (the walk once, two task pages) is past 250: the first goes, and hands
    // its walk, still shown by the second, to it
    expect(h.length).toBe(1);
    expect(h.dropped).toBe(1);
    expect(h.at(0)!.seq).toBe(2);
    expect(h.rowsHeld).toBe(200);
  });
});

describe('coroutine walks a few workers at a time', () => {
  it('asks only the workers named; the others keep their last walk, workers gone leave', async () => {
    const client = new FakeClient();
    client.workers = [101, 102, 103].map((pid) => ({ pid, attached: true }));
    let n = 0;
    client.handlers['Lua.getCoroutines'] = (pid) => {
      if (pid === 103) throw new Error('agent busy');
      return { coroutines: [{ id: ++n, kind: 'request', state: 'suspended', frames: [] }], ...(pid === 102 && { truncated: true }) };
    };
    const view = new CoroutinesView(client);
    await view.refreshWorkers([101, 102], 1, [101, 102, 103]);
    expect(view.state.map((w) => [w.pid, w.coroutines.map((c) => c.id), w.truncated ?? false])).toEqual([[101, [1], false], [102, [2], true]]);
    await view.refreshWorkers([103], 1, [101, 102, 103]);
    expect(view.state.map((w) => w.pid)).toEqual([101, 102, 103]);
    expect(view.state[2]).toEqual({ pid: 103, coroutines: [], error: 'agent busy' });
    await view.refreshWorkers([101], 1, [101, 103]);
    expect(view.state.map((w) => [w.pid, w.coroutines.map((c) => c.id)])).toEqual([[101, [3]], [103, []]]);
    expect(client.calls.every((c) => (c.params as { frames: number }).frames === 1)).toBe(true);
  });
});

describe('coroutine walks as deltas over the last one', () => {
  const co = (id: number, line: number) => ({ id, kind: 'request', state: 'suspended', frames: [{ function: 'f', source: 'app.lua', line }] });

  it('keeps the rows not listed again as the same objects, drops the ids gone, asks since the epoch it holds', async () => {
    const client = new FakeClient();
    client.workers = [{ pid: 101, attached: true }];
    const answers: unknown[] = [
      { coroutines: [co(1, 10), co(2, 20), co(3, 30)], epoch: 7 },
      { coroutines: [co(2, 21), co(4, 40)], base: 7, gone: [3], epoch: 8 },
      // an answer over a walk this view does not hold: refused, and the next asks for all
      { coroutines: [], base: 5, gone: [], epoch: 9 },
      { coroutines: [co(1, 10)], epoch: 10 },
    ];
    client.handlers['Lua.getCoroutines'] = () => answers.shift();
    const view = new CoroutinesView(client);
    await view.refreshWorkers([101], 1);
    const first = view.state[0]!;
    expect(first.coroutines.map((c) => c.id)).toEqual([1, 2, 3]);
    await view.refreshWorkers([101], 1);
    const second = view.state[0]!;
    expect(second.coroutines.map((c) => [c.id, c.frames[0]!.line])).toEqual([[1, 10], [2, 21], [4, 40]]);
    expect(second.coroutines[0]).toBe(first.coroutines[0]);
    expect(second.newRows).toBe(2);
    await view.refreshWorkers([101], 1);
    expect(view.state[0]!.error).toMatch(/built on walk 5/);
    await view.refreshWorkers([101], 1);
    expect(view.state[0]!.coroutines.map((c) => c.id)).toEqual([1]);
    expect(client.calls.map((c) => (c.params as { since: number }).since)).toEqual([0, 7, 8, 0]);
  });

  it('the history counts a delta\'s rows taken over from the walk before once', () => {
    const h = new History(60_000, 250);
    const rows = (n: number) => new Array(n).fill(0);
    const a = { pid: 1, coroutines: rows(200) };
    h.push(snap(1, 0, { cos: [a], tasks: [] }));
    // built on a: 5 new rows, 195 the same objects
    h.push(snap(2, 500, { cos: [{ pid: 1, coroutines: rows(200), newRows: 5 }], tasks: [] }));
    expect(h.length).toBe(2);
    expect(h.rowsHeld).toBe(205);
    h.push(snap(3, 1000, { cos: [{ pid: 1, coroutines: rows(200), newRows: 50 }], tasks: [] }));
    // 255 past 250: the first goes and hands the 195 rows still shown to the second
    expect(h.length).toBe(2);
    expect(h.rowsHeld).toBe(250);
  });
});

describe('the sampler', () => {
  it('one request per kind at a time: a slow answer skips that kind\'s turns; a quarter of the workers walked per tick', async () => {
    const world = new World({ workers: 8 });
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const tasks = world.client.handlers['FFI.getTasks']!;
    world.client.handlers['FFI.getTasks'] = async (pid, p) => {
      await slow;
      return tasks(pid, p);
    };
    const store = new Store(world.client);
    const sampler = new Sampler({
      store, now: world.now, refreshMs: 500, manual: true, taskWant: () => 50, wantCoroutines: () => true, hits: () => 0,
      onSample: () => undefined, onError: (k, e) => { throw new Error(`${k}: ${String(e)}`); },
    });
    await store.workers.refresh();
    const first = sampler.tick();
    await new Promise((r) => setImmediate(r));
    const second = await sampler.tick();
    expect(sampler.counts.skipped).toBe(1);
    expect(second!.tasks).toEqual([]);
    release();
    const one = await first;
    expect(one!.tasks).toHaveLength(8);
    const walked = world.client.calls.filter((c) => c.method === 'Lua.getCoroutines').map((c) => c.pid);
    expect(walked).toEqual([101, 102, 103, 104]);
    // one frame each, from application code: the agent skips C and the plumbing (store/frames.ts)
    const skip = defaultFrameRule().patterns.join(',');
    for (const c of world.client.calls.filter((x) => x.method === 'Lua.getCoroutines')) expect(c.params).toEqual({ frames: 1, skip, since: 0 });
    for (const c of world.client.calls.filter((x) => x.method === 'FFI.getTasks')) expect(c.params).toMatchObject({ skip });
    sampler.sampleSoon(108);
    await sampler.tick();
    const next = world.client.calls.filter((c) => c.method === 'Lua.getCoroutines').map((c) => c.pid).slice(4);
    expect(next).toEqual([108, 105]);
    sampler.stop();
    store.dispose();
  });
});

describe('queue rows over all workers', () => {
  const lat = (p99: number) => ({ p50: p99 / 4, p99, max: p99, count: 10 });
  const row = (pid: number, name: string, depth: number, p99: number, hist: (number | undefined)[]): QueueRow => ({
    key: `${pid}/${name}`, pid, workers: 1, name, depth, max: 100, in_flight: 1, enqueued: 10, completed: pid === 1 ? null : 5,
    timeouts: 1, rejected: 0, timeoutsRising: pid === 2, rejectedRising: false,
    latency: { queue: lat(p99), service: lat(p99), wakeup: lat(p99), total: lat(p99) },
    depthHistory: hist, rateHistory: hist, sampleEvery: pid === 2 ? 16 : 1,
  });

  it('sums counts, rates and the sparklines sample by sample; latencies are the worst worker\'s', () => {
    const [echo] = aggregate([row(1, 'echo', 3, 2, [1, 2, 3]), row(2, 'echo', 4, 9, [undefined, 5]), row(1, 'img', 1, 1, [])]);
    expect(echo).toMatchObject({
      key: '*/echo', pid: null, workers: 2, depth: 7, max: 200, in_flight: 2, enqueued: 20, completed: 5,
      timeouts: 2, timeoutsRising: true, depthHistory: [1, 2, 8],
    });
    expect(echo!.latency.total).toEqual({ p50: 2.25, p99: 9, max: 9, count: 20 });
    // a worker whose latencies come from 1 task in 16 makes the aggregate an estimate too
    expect(echo!.sampleEvery).toBe(16);
  });

  it('a runtime that is not instrumented shows - for timeouts and rejected, not 0', () => {
    const quiet = (pid: number): QueueRow => ({ ...row(pid, 'quiet', 2, 0, []), timeouts: 0, rejected: 0, timeoutsRising: false,
      enqueued: null, completed: null, sampleEvery: 0, uncounted: true });
    // over all workers too, while every worker's runtime of that name is uncounted
    expect(aggregate([quiet(1), quiet(2)])[0]!.uncounted).toBe(true);
    expect(aggregate([quiet(1), row(2, 'quiet', 1, 1, [])])[0]!.uncounted).toBeUndefined();
    const host = {
      now: () => 0, theme: makeTheme({ color: false, unicode: true }), utc: true, thresholds: DEFAULT_THRESHOLDS,
      setThresholds: () => undefined, paused: false, step: () => false, info: () => undefined, error: () => undefined,
      update: () => undefined,
    } as unknown as PaneHost;
    const pane = new QueuePane(host);
    pane.setRows([quiet(1), row(1, 'echo', 3, 2, [])]);
    const lines = pane.table.render(120, 4, { theme: host.theme, focused: true, now: 0 })
      .map((l) => l.spans.map((s) => s.text).join('').trimEnd());
    const head = lines[0]!;
    const cell = (name: string, col: string) => {
      const line = lines.find((l) => l.includes(` ${name} `) || l.startsWith(name))!;
      const end = head.indexOf(col) + col.length;
      return line.slice(end - 4, end).trim();
    };
    expect(head).toMatch(/tmo +rej/);
    expect([cell('quiet', 'tmo'), cell('quiet', 'rej')]).toEqual(['-', '-']);
    expect([cell('echo', 'tmo'), cell('echo', 'rej')]).toEqual(['1', '0']);
  });
});

describe('the coroutines pane with nothing live', () => {
  it('says the rows are hidden and how to show them, not that nothing was sampled', () => {
    const infos: string[] = [];
    const host = {
      now: () => 0, theme: makeTheme({ color: false, unicode: true }), utc: true, thresholds: DEFAULT_THRESHOLDS,
      setThresholds: () => undefined, paused: false, step: () => false, openStack: () => undefined, openHit: () => undefined,
      toTask: () => undefined, toCoroutine: () => undefined, info: (t: string) => infos.push(t), error: () => undefined, update: () => undefined,
    } as unknown as PaneHost;
    const pane = new CoroutinesPane(host);
    const ctx = { theme: host.theme, focused: true, now: 0 };
    const body = () => pane.table.render(60, 4, ctx).map((l) => l.spans.map((s) => s.text).join('').trimEnd());
    expect(body()[1]).toBe(' no coroutines sampled yet');
    const dead = (id: number) => ({ id, kind: 'thread', state: 'dead', wait: null, frames: [], request: null, top_frame_index: null });
    pane.setWorkers([{ pid: 7, coroutines: [dead(1), dead(2)] }]);
    expect(body()[1]).toBe(' no live coroutines; 2 dead or not started (a shows them)');
    expect(pane.info()).toMatch(/2 dead\/unstarted hidden \(a\)/);
  });
});

describe('a frame\'s variables in the stack tree', () => {
  it('a local not used from here on is dim with no value; library upvalues wait in a closed node of their own', () => {
    const frame = stackFrameNode({
      level: 1, function: 'step', source: '/srv/app/a.lua', line: 9, what: 'Lua',
      locals: [{ name: 'ok', value: { type: 'boolean', value: true } }, { name: 'err', value: { type: 'unavailable' } }],
      upvalues: [
        { name: 'sleep', value: { type: 'function', value: 'function [C]' }, library: true },
        { name: 'cache', value: { type: 'table', entries: [] } },
        { name: 'json', value: { type: 'table', entries: [] }, library: true },
      ],
    } as never, 0, true);
    const kids = frame.children!;
    expect(kids.map((k) => [k.label, k.value, k.role])).toEqual([
      ['ok', 'true', undefined], ['err', 'not used from here on', 'dim'], ['upvalues', '1 + 2 library', undefined],
    ]);
    const up = kids[2]!.children!;
    expect(up.map((k) => k.label)).toEqual(['cache', 'library']);
    expect(up[1]!.children!.map((k) => k.label)).toEqual(['sleep', 'json']);
    expect(up[1]!.expanded).toBeFalsy();
  });
});

describe('the tasks pane\'s order', () => {
  it('sorts by when each task was enqueued, not by ages read at different moments in different workers', () => {
    const host = {
      now: () => 0, theme: makeTheme({ color: false, unicode: true }), utc: true, thresholds: DEFAULT_THRESHOLDS,
      setThresholds: () => undefined, paused: false, step: () => false, openStack: () => undefined, openHit: () => undefined,
      toTask: () => undefined, toCoroutine: () => undefined, info: () => undefined, error: () => undefined, update: () => undefined,
    } as unknown as PaneHost;
    const pane = new TasksPane(host);
    const task = (id: number, enq: number, age: number) => ({
      id, runtime: 'rt', method: 'm', state: 'pending', age_ms: age, enqueued_ms: enq, req_len: 1, req_preview: 'x', coroutine: null,
    });
    // worker 2's answer was taken 11 ms later: its ages read 11 ms more for the same enqueue times
    pane.setWorkers([
      { pid: 1, total: 2, truncated: false, tasks: [task(1, 1000, 500), task(2, 1002, 498)] },
      { pid: 2, total: 2, truncated: false, tasks: [task(1, 1001, 510), task(2, 1003, 508)] },
    ]);
    expect(pane.table.visible().map((r) => `${r.pid}:${r.id}`)).toEqual(['1:1', '2:1', '1:2', '2:2']);
  });
});
