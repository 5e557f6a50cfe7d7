// The view store (store/) against a fake client: plain data in, plain data out. Rates from
// successive samples and the bounded history, task paging, the hit stream's per-breakpoint
// counts, drops, id filtering and end handling, the workers' modes, and every subscription
// given back by its disposer.
import { describe, expect, it } from 'vitest';
import type { BreakpointEvent } from '../client/client.js';
import { queueJson } from '../cli/format/queue.js';
import type { FFI, Lua } from '../probe/protocol-types.js';
import { CoroutinesView } from '../store/coroutines.js';
import { HitsView } from '../store/hits.js';
import { QueueView, ratesBetween, type RuntimeRow } from '../store/queue.js';
import { StackView } from '../store/stack.js';
import { Store } from '../store/store.js';
import { PAGE, TasksView, WALK_MAX } from '../store/tasks.js';
import { WorkersView } from '../store/workers.js';
import { FakeClient } from './harness/fake-client.js';

const LAT = { p50: 1, p99: 2, max: 3, count: 4 };

function runtime(name: string, enqueued: number, completed: number, extra: Partial<FFI.RuntimeStats> = {}): FFI.RuntimeStats {
  return {
    name, lib: `lib${name}.so`, unloaded: false, enqueued, polled: completed, responded: completed, completed, timeouts: 0,
    rejected: 0, late: 0, depth: enqueued - completed, in_flight: 0, live: 0, max_queue: 100, wake: 'pump',
    latency_ms: { queue: LAT, service: LAT, wakeup: LAT, total: { ...LAT, p99: enqueued } },
    ...extra,
  };
}

/** A fake clock and a client whose runtimes the test sets per worker. */
function queueSetup(history?: number) {
  const client = new FakeClient();
  let now = 0;
  const runtimes = new Map<number, FFI.RuntimeStats[]>();
  client.handlers['FFI.getRuntimes'] = (pid) => ({ runtimes: runtimes.get(pid) ?? [] });
  const queue = new QueueView(client, { now: () => now, ...(history !== undefined ? { history } : {}) });
  return { client, queue, runtimes, at: (ms: number) => (now = ms) };
}

describe('queue: rates and history', () => {
  it('rates come from successive samples: none on the first, per second after', async () => {
    const { queue, runtimes, at } = queueSetup();
    runtimes.set(101, [runtime('echo', 100, 90)]);
    at(1_000);
    const first = await queue.sample();
    expect(first.workers[0]!.runtimes[0]!.rates).toBeNull();
    runtimes.set(101, [runtime('echo', 150, 140)]);
    at(1_500);
    const second = await queue.sample();
    expect(second.at).toBe(1_500);
    expect(second.workers[0]!.runtimes[0]!.rates).toEqual({ enqueued: 100, completed: 100 });
    expect(second.workers[1]).toEqual({ pid: 102, runtimes: [] });
  });

  it('a counter that went back (the runtime loaded again) or no time between samples gives no rate', () => {
    const row = (enq: number, done: number): RuntimeRow => ({ ...runtime('x', enq, done), latency_ms: runtime('x', 0, 0).latency_ms });
    expect(ratesBetween({ at: 0, row: row(10, 10) }, 1_000, row(5, 5))).toBeNull();
    expect(ratesBetween({ at: 1_000, row: row(10, 10) }, 1_000, row(20, 20))).toBeNull();
    expect(ratesBetween({ at: 0, row: row(10, 10) }, 2_000, row(30, 12))).toEqual({ enqueued: 10, completed: 1 });
    // a runtime that is not instrumented counts nothing: no rate, rather than 0/s
    const quiet = { ...row(0, 0), latency_sample_every: 0 };
    expect(ratesBetween({ at: 0, row: quiet }, 2_000, quiet)).toBeNull();
  });

  it('the history of each runtime is bounded, oldest first; a worker that left takes its own with it', async () => {
    const { client, queue, runtimes, at } = queueSetup(3);
    for (let i = 0; i < 5; i++) {
      runtimes.set(101, [runtime('echo', 10 * i, 10 * i)]);
      runtimes.set(102, [runtime('echo', 0, 0)]);
      at(i * 1_000);
      await queue.sample();
    }
    const h = queue.history(101, 'echo');
    expect(h.map((p) => p.at)).toEqual([2_000, 3_000, 4_000]);
    expect(h.map((p) => p.enqueued_per_s)).toEqual([10, 10, 10]);
    expect(h.at(-1)).toMatchObject({ depth: 0, in_flight: 0, completed_per_s: 10, p99_ms: 40 });
    // the history is a copy: the view's own is not the caller's to change
    h.length = 0;
    expect(queue.history(101, 'echo')).toHaveLength(3);

    runtimes.clear();
    runtimes.set(102, [runtime('echo', 0, 0)]);
    client.workers = client.workers.filter((w) => w.pid === 102);
    at(9_000);
    await queue.sample();
    expect(queue.history(101, 'echo')).toEqual([]);
    expect(queue.history(102, 'echo')).toHaveLength(3);
  });

  it('a runtime that stops being reported takes its history with it, its worker staying; a worker that errs keeps its own', async () => {
    const { client, queue, runtimes, at } = queueSetup();
    runtimes.set(101, [runtime('echo', 1, 1), runtime('imgresize', 1, 1)]);
    runtimes.set(102, [runtime('echo', 1, 1)]);
    at(1_000);
    await queue.sample();
    // 101 loaded again without imgresize (a new nginx.conf): its points go
    runtimes.set(101, [runtime('echo', 2, 2)]);
    at(2_000);
    await queue.sample();
    expect(queue.history(101, 'imgresize')).toEqual([]);
    expect(queue.history(101, 'echo')).toHaveLength(2);
    // a failed answer says nothing about what runs: 102 keeps its points
    client.handlers['FFI.getRuntimes'] = (pid) => {
      if (pid === 102) throw new Error('agent busy');
      return { runtimes: runtimes.get(pid) ?? [] };
    };
    at(3_000);
    await queue.sample();
    expect(queue.history(102, 'echo')).toHaveLength(2);
    // imgresize back: a fresh history, no rate against the old counters
    runtimes.set(101, [runtime('echo', 3, 3), runtime('imgresize', 5, 5)]);
    at(4_000);
    const s = await queue.sample();
    expect(queue.history(101, 'imgresize')).toHaveLength(1);
    expect(s.workers[0]!.runtimes[1]!.rates).toBeNull();
  });

  it('--json keeps the documented shape (no rates, p50/p99 per phase), errors per worker', async () => {
    const { client, queue, runtimes, at } = queueSetup();
    runtimes.set(101, [runtime('echo', 1, 1)]);
    client.workers[1] = { pid: 102, attached: false, error: 'gone' };
    at(1);
    const s = await queue.sample();
    const doc = queueJson(s.workers) as { workers: any[] };
    expect(Object.keys(doc.workers[0].runtimes[0]).sort()).toEqual(
      ['completed', 'depth', 'enqueued', 'in_flight', 'latency_ms', 'name', 'rejected', 'timeouts', 'wake'].sort());
    expect(doc.workers[0].runtimes[0].wake).toBe('pump');
    expect(doc.workers[0].runtimes[0].latency_ms.total).toEqual({ p50: 1, p99: 1 });
    expect(doc.workers[1]).toEqual({ pid: 102, runtimes: [], error: 'not attached: gone' });
  });

  it('watch() samples on its interval until told to stop, and publishes each sample', async () => {
    const { queue, runtimes } = queueSetup();
    runtimes.set(101, [runtime('echo', 1, 1)]);
    const seen: number[] = [];
    const off = queue.onChange((s) => s && seen.push(s.workers.length));
    let stop!: () => void;
    const until = new Promise<void>((r) => (stop = r));
    const done = queue.watch(10, until);
    await new Promise((r) => setTimeout(r, 80));
    stop();
    await done;
    const n = seen.length;
    expect(n).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 40));
    expect(seen.length).toBe(n);
    off();
  });

  it('watch() ends with the error of a sample that failed', async () => {
    const { client, queue } = queueSetup();
    client.callAll = async () => {
      throw new Error('no worker of 100 is attached');
    };
    await expect(queue.watch(10, new Promise(() => undefined))).rejects.toThrow('no worker of 100 is attached');
  });
});

describe('tasks: pages', () => {
  function tasksSetup(total: number) {
    const client = new FakeClient();
    client.workers = [{ pid: 101, attached: true }];
    const all = Array.from({ length: total }, (_, i): FFI.Task => ({
      id: i + 1, runtime: 'slow', method: 'wait', state: 'pending', age_ms: 5, req_len: 3, req_preview: 'abc',
      ...(i === 0 ? { coroutine: { id: 7, frames: [{ function: 'f', source: 'a.lua', line: 3, what: 'Lua' }] } } : {}),
    }));
    client.handlers['FFI.getTasks'] = (_pid, p: FFI.GetTasksParams) => {
      const from = all.filter((t) => t.id > (p.after_id ?? 0));
      const max = Math.min(p.max ?? PAGE, PAGE);
      return { tasks: from.slice(0, max), truncated: from.length > max, ...(p.total === false ? {} : { total: all.length }) };
    };
    return { client, tasks: new TasksView(client) };
  }

  it('lists up to `want` per worker, page by page, and says how many there are', async () => {
    const { client, tasks } = tasksSetup(2_500);
    const [w] = await tasks.load({ want: 1_500 });
    expect(w).toMatchObject({ pid: 101, total: 2_500, truncated: true });
    expect(w!.tasks).toHaveLength(1_500);
    expect(w!.tasks[0]!.coroutine).toEqual({ id: 7, frames: [{ function: 'f', source: 'a.lua', line: 3 }], top_frame_index: 0 });
    expect(w!.tasks[1]!.coroutine).toBeNull();
    expect(client.calls.map((c) => c.params)).toEqual([
      { max: 1_000 },
      { max: 500, after_id: 1_000, total: false },
    ]);
    // the next page on demand (the TUI scrolling on)
    const [more] = await tasks.next(101, 2_000);
    expect(more!.tasks).toHaveLength(2_500);
    expect(more!.tasks.at(-1)!.id).toBe(2_500);
    expect(more!.truncated).toBe(false);
  });

  it('a task with no age (libnffi built with NFFI_NO_INSTRUMENT) has age_ms null, in --json too', async () => {
    const client = new FakeClient();
    client.workers = [{ pid: 101, attached: true }];
    client.handlers['FFI.getTasks'] = () => ({
      tasks: [{ id: 1, runtime: 'slow', method: 'wait', state: 'pending', req_len: 0, req_preview: '' }], total: 1, truncated: false,
    });
    const [w] = await new TasksView(client).load();
    expect(w!.tasks[0]!.age_ms).toBeNull();
    expect(JSON.parse(JSON.stringify(w!.tasks[0]))).toHaveProperty('age_ms', null);
  });

  it('never pages past the first answer\'s total; --older-than goes to every page', async () => {
    const { client, tasks } = tasksSetup(3);
    const [w] = await tasks.load({ want: Infinity, olderThanMs: 100 });
    expect(w).toMatchObject({ total: 3, truncated: false });
    expect(client.calls.map((c) => c.params)).toEqual([{ older_than_ms: 100, max: 1_000 }]);
  });
});

describe('tasks: the waiter\'s frame in application code and its request', () => {
  const C = { function: 'co_yield', source: '=[C]', line: -1, what: 'C' as const };
  const SEM = { function: 'wait', source: '/usr/share/lua/5.1/ngx/semaphore.lua', line: 160, what: 'Lua' as const };
  const CALL = { function: 'wait_ready', source: '/x/lua/nffi/call.lua', line: 93, what: 'Lua' as const };
  const STUB = { function: 'fetch', source: '/x/lua/nffi/call.lua', line: 203, what: 'Lua' as const };
  const APP = { function: 'h', source: '/srv/app.lua', line: 41, what: 'Lua' as const };
  const task = (id: number, co: number, state: FFI.Task['state'] = 'polled'): FFI.Task => ({
    id, runtime: 'slow', method: 'fetch', state, age_ms: 5, req_len: 3, req_preview: 'abc', coroutine: { id: co, frames: [C, SEM, CALL] },
  });

  function setup(total: number, tasks: FFI.Task[]) {
    const client = new FakeClient();
    client.workers = [{ pid: 101, attached: true }];
    client.handlers['FFI.getTasks'] = () => ({ tasks, total, truncated: false });
    client.handlers['Lua.getCoroutines'] = () => ({
      coroutines: [{ id: 7, kind: 'request', state: 'suspended', frames: [C, SEM, CALL, STUB, APP], request: { method: 'GET', uri: '/api/slow' } }],
    });
    client.handlers['Lua.getStack'] = (_pid, p: Lua.GetStackParams) => {
      if (p.coroutine !== 7) throw new Error('Lua.getStack in worker 101: coroutine 8 of worker 101 has finished');
      return { frames: [C, SEM, CALL, STUB, APP].map((f, level) => ({ ...f, level })) };
    };
    return client;
  }

  it('a worker with few tasks: one walk gives every waiter its frames and request; an abandoned task\'s coroutine is not its waiter', async () => {
    const client = setup(3, [task(1, 7), task(2, 8), task(3, 7, 'abandoned')]);
    const [w] = await new TasksView(client).load({ enrich: true });
    expect(w!.tasks[0]!.coroutine).toMatchObject({ id: 7, top_frame_index: 4, request: { method: 'GET', uri: '/api/slow' } });
    expect(w!.tasks[0]!.coroutine!.frames[4]).toEqual({ function: 'h', source: '/srv/app.lua', line: 41 });
    // gone by the walk, then by its stack: what the task said stays
    expect(w!.tasks[1]!.coroutine).toEqual({ id: 8, frames: [C, SEM, CALL].map(({ what: _, ...f }) => f), top_frame_index: null });
    expect(w!.tasks[2]!.coroutine).toMatchObject({ id: 7, top_frame_index: null });
    expect(w!.tasks[2]!.coroutine).not.toHaveProperty('request');
    expect(client.calls.map((c) => c.method)).toEqual(['FFI.getTasks', 'Lua.getCoroutines', 'Lua.getStack']);
  });

  it('a worker with more than WALK_MAX tasks: no walk, the stacks of the waiters (requests unknown)', async () => {
    const client = setup(WALK_MAX + 1, [task(1, 7), task(2, 7)]);
    const [w] = await new TasksView(client).load({ enrich: true });
    for (const t of w!.tasks) expect(t.coroutine).toMatchObject({ id: 7, top_frame_index: 4 });
    expect(w!.tasks[0]!.coroutine).not.toHaveProperty('request');
    // one stack for the two tasks of one coroutine
    expect(client.calls.map((c) => c.method)).toEqual(['FFI.getTasks', 'Lua.getStack']);
  });

  it('an agent that answers skip (frames from the application code, skipped, the request) is asked nothing more; without the request, the walk', async () => {
    const client = setup(3, [{ ...task(1, 7), coroutine: { id: 7, frames: [APP], skipped: 4, request: { method: 'GET', uri: '/x' } } as FFI.TaskCoroutine }]);
    const [w] = await new TasksView(client).load({ enrich: true, skip: true });
    expect(client.calls.map((c) => c.method)).toEqual(['FFI.getTasks']);
    expect((client.calls[0]!.params as FFI.GetTasksParams).skip).toContain('nffi/**');
    expect(w!.tasks[0]!.coroutine).toEqual({ id: 7, frames: [{ function: 'h', source: '/srv/app.lua', line: 41 }], top_frame_index: 0, skipped: 4, request: { method: 'GET', uri: '/x' } });
    const noRequest = setup(3, [{ ...task(1, 7), coroutine: { id: 7, frames: [APP], skipped: 4 } as FFI.TaskCoroutine }]);
    const [v] = await new TasksView(noRequest).load({ enrich: true, skip: true });
    expect(noRequest.calls.map((c) => c.method)).toEqual(['FFI.getTasks', 'Lua.getCoroutines']);
    expect(v!.tasks[0]!.coroutine).toEqual({ id: 7, frames: [{ function: 'h', source: '/srv/app.lua', line: 41 }], top_frame_index: 0, skipped: 4, request: { method: 'GET', uri: '/api/slow' } });
  });

  it("enrich 'walk' (tasks --json): the walk of a small worker, never the stacks", async () => {
    const big = setup(WALK_MAX + 1, [task(1, 7)]);
    await new TasksView(big).load({ enrich: 'walk' });
    expect(big.calls.map((c) => c.method)).toEqual(['FFI.getTasks']);
    const small = setup(2, [task(1, 7), task(2, 8)]);
    const [w] = await new TasksView(small).load({ enrich: 'walk' });
    expect(small.calls.map((c) => c.method)).toEqual(['FFI.getTasks', 'Lua.getCoroutines']);
    expect(w!.tasks[0]!.coroutine).toMatchObject({ top_frame_index: 4, request: { method: 'GET', uri: '/api/slow' } });
  });
});

describe('the hit stream', () => {
  const hit = (id: number, pid: number): BreakpointEvent => ({ event: 'hit', id, pid, time: 1, source: 'a.lua', line: 3, frames: [] });

  it('counts hits and drops per breakpoint and per worker; `recent` is bounded and says what fell off', () => {
    const client = new FakeClient();
    const hits = new HitsView(client, { keep: 3 });
    for (const e of [hit(1, 101), hit(1, 102), hit(2, 101), { event: 'dropped', id: 1, pid: 102, count: 5 } as const, hit(1, 101)]) {
      client.breakpoint.emit(e);
    }
    const one = hits.get(1)!;
    expect(one).toMatchObject({ id: 1, hits: 3, dropped: 5 });
    expect(one.workers.map((w) => [w.pid, w.hits, w.dropped])).toEqual([[101, 2, 0], [102, 1, 5]]);
    expect(hits.get(2)).toMatchObject({ hits: 1, dropped: 0 });
    expect(hits.state.recent.map((e) => e.event)).toEqual(['hit', 'dropped', 'hit']);
    expect(hits.state.overflow).toBe(2);
  });

  it('set() follows its own id only, the events that overtook its answer first, in order', async () => {
    const client = new FakeClient();
    const hits = new HitsView(client);
    const got: BreakpointEvent[] = [];
    client.setBreakpointImpl = async () => {
      client.breakpoint.emit({ event: 'armed', id: 4, pid: 101, state: 'armed' });
      client.breakpoint.emit({ event: 'armed', id: 3, pid: 101, state: 'armed' }); // another front end's
      client.breakpoint.emit(hit(4, 101));
      return { id: 4, workers: [{ pid: 101, state: 'armed', hits: 0, dropped: 0 }], unreached: [{ pid: 102, why: 'held' }] };
    };
    const bp = await hits.set({ url: 'a.lua', line: 3 }, (e) => got.push(e));
    expect(bp).toMatchObject({ id: 4, unreached: [{ pid: 102, why: 'held' }] });
    client.breakpoint.emit(hit(3, 101));
    client.breakpoint.emit(hit(4, 102));
    expect(got.map((e) => `${e.event} ${e.id}`)).toEqual(['armed 4', 'hit 4', 'hit 4']);
    expect(hits.get(4)).toMatchObject({ spec: { url: 'a.lua', line: 3 }, hits: 2 });
    bp.unfollow();
    client.breakpoint.emit(hit(4, 101));
    expect(got).toHaveLength(3);
    expect(hits.get(4)!.hits).toBe(3);
  });

  it('a set() that fails leaves no listener behind', async () => {
    const client = new FakeClient();
    const hits = new HitsView(client);
    client.setBreakpointImpl = async () => {
      throw new Error('condition rejected: boom');
    };
    const listeners = (hits as unknown as { events: { size: number } }).events;
    await expect(hits.set({ url: 'a.lua', line: 1 })).rejects.toThrow('condition rejected');
    expect(listeners.size).toBe(0);
  });

  it('the client\'s end ends every open breakpoint with its reason; a later `ended` is not said twice', async () => {
    const client = new FakeClient();
    const hits = new HitsView(client);
    const got: string[] = [];
    client.setBreakpointImpl = async () => ({ id: 1, workers: [], unreached: [] });
    const bp = await hits.set({ url: 'a.lua', line: 1 }, (e) => got.push(e.event === 'ended' ? `ended ${e.reason}` : e.event));
    client.breakpoint.emit({ event: 'ended', id: 9, reason: 'count' });
    const ended = hits.ended(bp.id);
    client.end.emit('nginx master 100 exited');
    expect(await ended).toBe('nginx master 100 exited');
    client.breakpoint.emit({ event: 'ended', id: 1, reason: 'nginx master 100 exited' });
    expect(got).toEqual(['ended nginx master 100 exited']);
    expect(hits.get(9)!.ended).toBe('count');
    expect(await hits.ended(1)).toBe('nginx master 100 exited');
  });

  it('remove() says false for a breakpoint that is gone, whatever the client says', async () => {
    const client = new FakeClient();
    const hits = new HitsView(client);
    client.removeImpl = async () => {
      throw new Error('Debugger.removeBreakpoint: serve probe 1 closed the connection');
    };
    expect(await hits.remove(1)).toBe(false);
    client.removeImpl = async () => true;
    expect(await hits.remove(1)).toBe(true);
  });

  it('load() takes in the breakpoints the probe holds (set by other front ends)', async () => {
    const client = new FakeClient();
    client.listed = [{ id: 5, spec: { url: 'b.lua', line: 2 }, state: 'armed', hits: 7, dropped: 1, workers: [{ pid: 101, state: 'armed', hits: 7, dropped: 1 }] }];
    const s = await new HitsView(client).load();
    expect(s.breakpoints).toEqual([{ id: 5, spec: { url: 'b.lua', line: 2 }, hits: 7, dropped: 1, workers: [{ pid: 101, state: 'armed', hits: 7, dropped: 1 }] }]);
  });
});

describe('workers, coroutines, stack', () => {
  it('workers: the mode each Agent.getStats reports; follow() keeps attach, detach and armed modes', async () => {
    const client = new FakeClient();
    client.workers = [{ pid: 101, attached: true, versions: { nginx: '1', ngx_lua: '2', luajit: '3', agent: '0.1.0' } }];
    client.handlers['Agent.getStats'] = () => ({ breakpoints: { mode: { mode: 'call hook', reason: 'traps not delivered' } } });
    const workers = new WorkersView(client);
    expect((await workers.refresh())[0]!.breakpoint_mode).toEqual({ mode: 'call hook', reason: 'traps not delivered' });
    const off = workers.follow();
    expect(client.held()).toMatchObject({ target: 1, breakpoint: 1 });
    client.breakpoint.emit({ event: 'armed', id: 1, pid: 101, state: 'armed', mode: { mode: 'watching' } });
    expect(workers.state[0]!.breakpoint_mode).toEqual({ mode: 'watching' });
    client.target.emit({ event: 'attached', target: { pid: 103, attached: true } });
    client.target.emit({ event: 'detached', pid: 101, reason: 'worker shutting down' });
    expect(workers.state.map((w) => [w.pid, w.breakpoint_mode.mode, w.error])).toEqual([[101, 'unknown', 'worker shutting down'], [103, 'unknown', undefined]]);
    off();
    expect(client.held()).toMatchObject({ target: 0, breakpoint: 0 });
  });

  it('coroutines: one row per coroutine, the frames brief, a worker\'s error kept', async () => {
    const client = new FakeClient();
    const co: Lua.Coroutine = {
      id: 1, kind: 'request', state: 'suspended', wait: { kind: 'ngx.sleep' },
      frames: [{ function: 'sleep', source: '=[C]', line: -1, what: 'C' }], request: { method: 'GET', uri: '/x' },
    };
    client.handlers['Lua.getCoroutines'] = (pid, p) => {
      if (pid === 102) throw new Error('Lua.getCoroutines to worker 102: busy');
      expect(p).toEqual({ frames: 2 });
      return { coroutines: [co] };
    };
    expect(await new CoroutinesView(client).refresh(2)).toEqual([
      { pid: 101, coroutines: [{ id: 1, kind: 'request', state: 'suspended', wait: { kind: 'ngx.sleep' }, frames: [{ function: 'sleep', source: '=[C]', line: -1 }], request: { method: 'GET', uri: '/x' }, top_frame_index: null }] },
      { pid: 102, coroutines: [], error: 'Lua.getCoroutines to worker 102: busy' },
    ]);
  });

  it('stack: the frames and the request, an empty table ({}) read as no frames', async () => {
    const client = new FakeClient();
    client.handlers['Lua.getStack'] = (_pid, p) => ({ frames: p.locals ? {} : [], request: undefined });
    expect(await new StackView(client).load(101, 7, { locals: true })).toEqual({ pid: 101, coroutine: 7, request: null, frames: [] });
    expect(client.calls[0]).toEqual({ pid: 101, method: 'Lua.getStack', params: { coroutine: 7, locals: true } });
  });

  it('a store that is disposed holds no listener of the client', () => {
    const client = new FakeClient();
    const store = new Store(client);
    store.workers.follow();
    expect(client.held()).toEqual({ target: 1, breakpoint: 2, end: 1 });
    store.dispose();
    expect(client.held()).toEqual({ target: 0, breakpoint: 0, end: 0 });
  });
});
