// The breakpoint command's words (FILE:LINE, if COND, --rate, --timeout), the rendering of hits
// and events, and probe/breakpoints.ts over a fake session: shared ids, re-apply to a new
// worker, --count as a total, rejection, removal everywhere.
import { describe, expect, it } from 'vitest';
import { buildSpec, parseCondition, parseLocation, parseRate } from '../cli/breakpoint-args.js';
import { formatBreakpoints } from '../cli/format/breakpoints.js';
import { parseDuration } from '../cli/duration.js';
import { UsageError } from '../cli/errors.js';
import { clock, eventJson, formatEvent, formatHit } from '../cli/format/hit.js';
import { fromWire, toWire } from '../probe/breakpoint-wire.js';
import { Breakpoints, type BreakpointEvent, type BreakpointSession } from '../probe/breakpoints.js';
import { AgentError } from '../probe/errors.js';
import type { Debugger, Lua, Target } from '../probe/protocol-types.js';

describe('FILE:LINE', () => {
  it.each([
    ['handler.lua:42', 'handler.lua', 42],
    ['app/handler.lua:7', 'app/handler.lua', 7],
    ['/abs/path/app.lua:1', '/abs/path/app.lua', 1],
    ['=content_by_lua(nginx.conf:40):3', '=content_by_lua(nginx.conf:40)', 3],
    ['C:/odd:name.lua:12', 'C:/odd:name.lua', 12],
  ])('%s → %s line %d', (text, url, line) => {
    expect(parseLocation(text)).toEqual({ url, line });
  });

  it.each(['handler.lua', 'handler.lua:', ':42', 'handler.lua:0', 'handler.lua:4x', 'handler.lua:-1', ''])(
    '%j is a usage error', (text) => {
      expect(() => parseLocation(text)).toThrow(UsageError);
    });

  it.each(['ffi:rt.method', 'ffi:*.*', 'ffi:slow.*', 'ffi:*.echo', 'ffi:echo#2.x', 'ffi:my.rt.method'])(
    'task breakpoint %s: the url as it is, no line', (text) => {
      expect(parseLocation(text)).toEqual({ url: text });
    });

  it.each(['ffi:', 'ffi:rt', 'ffi:rt.', 'ffi:.m', 'ffi:a b.c'])('task breakpoint %j is a usage error', (text) => {
    expect(() => parseLocation(text)).toThrow(/expected ffi:RUNTIME\.METHOD/);
  });
});

describe('if COND', () => {
  it.each([
    [[], undefined],
    [['if', 'n > 3'], 'n > 3'],
    [['if', 'n', '>', '3', 'and', 'ctx.user', '==', '"bob"'], 'n > 3 and ctx.user == "bob"'],
    [['if n > 3'], 'n > 3'],
    [['if', '  n > 3  '], 'n > 3'],
    [['if', 'a', 'if', 'b'], 'a if b'],
  ])('%j → %j', (words, cond) => {
    expect(parseCondition(words)).toBe(cond);
  });

  it.each([[['if']], [['if', '  ']], [['when', 'n > 3']], [['n > 3']], [['iffy']]])('%j is a usage error', (words) => {
    expect(() => parseCondition(words)).toThrow(UsageError);
  });
});

describe('--rate and --timeout', () => {
  it.each([['10/s', 10], ['10', 10], ['0.5/s', 0.5], ['120/m', 2], [' 3 / s ', 3]])('--rate %s → %d/s', (text, n) => {
    expect(parseRate(text)).toBe(n);
  });

  it.each(['0', '0/s', 'fast', '10/h', '-1', '/s'])('--rate %s is a usage error', (text) => {
    expect(() => parseRate(text)).toThrow(UsageError);
  });

  it.each([['10m', 600_000], ['30s', 30_000], ['250ms', 250], ['1h', 3_600_000], ['5', 5_000]])('--timeout %s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('builds the spec, with the default 10m timeout', () => {
    expect(buildSpec('app.lua:3', ['if', 'n', '>', '1'], { count: '3', rate: '5/s', log: 'n={n}' })).toEqual({
      url: 'app.lua', line: 3, condition: 'n > 1', log: 'n={n}', count: 3, rate: 5, timeout_ms: 600_000,
    });
    expect(buildSpec('app.lua:3', [], { timeout: '2s' })).toEqual({ url: 'app.lua', line: 3, timeout_ms: 2_000 });
  });

  it.each([[{ count: '0' }], [{ count: 'x' }], [{ timeout: 'soon' }], [{ timeout: '0s' }], [{ log: ' ' }]])('%j is a usage error', (opts) => {
    expect(() => buildSpec('app.lua:3', [], opts)).toThrow(UsageError);
  });
});

const T = new Date(2025, 0, 2, 12, 0, 1, 123).getTime() / 1000;

const HIT: Extract<BreakpointEvent, { event: 'hit' }> = {
  event: 'hit', id: 1, pid: 4243, time: T, source: 'app/handler.lua', line: 42,
  frames: [
    { function: 'handle', source: 'app/handler.lua', line: 42, what: 'Lua' },
    { function: 'route', source: 'app/init.lua', line: 10, what: 'Lua' },
  ],
  locals: { n: { type: 'number', value: 3 }, user: { type: 'string', value: 'bob' } },
  upvalues: { cache: { type: 'table', entries: [{ key: { type: 'string', value: 'k' }, value: { type: 'number', value: 1 } }] } },
  varargs: [{ type: 'boolean', value: true }],
  request: { method: 'GET', uri: '/items?id=3' },
};

describe('hit rendering', () => {
  it('clock is local HH:MM:SS.mmm', () => {
    expect(clock(T)).toBe('12:00:01.123');
  });

  it('a snapshot: header, frames, locals under #0', () => {
    expect(formatHit(HIT)).toBe([
      '[hit bp 1] pid 4243 app/handler.lua:42 12:00:01.123 GET /items?id=3',
      '  #0 handle at app/handler.lua:42',
      '      n = 3',
      '      user = "bob"',
      '      (upvalue) cache = {k=1}',
      '      ... = true',
      '  #1 route at app/init.lua:10',
    ].join('\n'));
  });

  it('a logpoint: one line', () => {
    const { locals: _l, upvalues: _u, varargs: _v, ...rest } = HIT;
    expect(formatHit({ ...rest, message: 'n=3 user=bob' })).toBe('[hit bp 1] pid 4243 app/handler.lua:42 12:00:01.123 GET /items?id=3 n=3 user=bob');
    expect(eventJson({ ...rest, message: 'n=3' })).toEqual({
      event: 'hit', id: 1, pid: 4243, time: T, source: 'app/handler.lua', line: 42, frames: HIT.frames, message: 'n=3', request: HIT.request,
    });
  });

  it('NDJSON keys in the documented order; empty Lua tables ([]) become {}', () => {
    expect(Object.keys(eventJson(HIT)!)).toEqual(['event', 'id', 'pid', 'time', 'source', 'line', 'frames', 'locals', 'upvalues', 'varargs', 'request']);
    const bare = eventJson({ ...HIT, locals: [] as unknown as Record<string, Lua.Value>, upvalues: undefined, varargs: undefined, request: undefined })!;
    expect(bare).toMatchObject({ locals: {}, upvalues: {}, varargs: [], request: {} });
  });

  it.each<[BreakpointEvent, string, Record<string, unknown>]>([
    [{ event: 'armed', id: 2, pid: 10, state: 'armed', source: 'a.lua', line: 5, mode: { mode: 'watching' } }, 'bp 2 armed on worker 10 at a.lua:5 (watching)', { event: 'armed', id: 2, pid: 10, state: 'armed', source: 'a.lua', line: 5, mode: { mode: 'watching' } }],
    [{ event: 'armed', id: 2, pid: 10, state: 'armed', source: 'a.lua', line: 7, moved_from: 5, mode: { mode: 'watching' } }, 'bp 2 armed on worker 10 at a.lua:7 (asked for line 5: no code there) (watching)', { event: 'armed', id: 2, pid: 10, state: 'armed', source: 'a.lua', line: 7, moved_from: 5, mode: { mode: 'watching' } }],
    [{ event: 'armed', id: 2, pid: 10, state: 'pending' }, 'bp 2 pending on worker 10: the file is not loaded yet, it arms when it loads', { event: 'armed', id: 2, pid: 10, state: 'pending' }],
    [{ event: 'removed', id: 2, pid: 10, reason: 'count' }, 'bp 2 removed on worker 10 (count)', { event: 'removed', id: 2, pid: 10, reason: 'count' }],
    [{ event: 'error', id: 2, pid: 10, message: 'condition: boom' }, 'bp 2 error on worker 10: condition: boom', { event: 'error', id: 2, pid: 10, message: 'condition: boom' }],
    [{ event: 'dropped', id: 2, pid: 10, count: 5 }, 'bp 2 dropped 5 hits on worker 10', { event: 'dropped', id: 2, pid: 10, count: 5 }],
  ])('%j', (e, human, json) => {
    expect(formatEvent(e)).toBe(human);
    expect(eventJson(e)).toEqual(json);
  });

  it('the list table', () => {
    expect(formatBreakpoints([])).toBe('no breakpoints');
    const b = {
      id: 3, spec: { url: 'app.lua', line: 4, condition: 'n > 1' }, state: 'armed' as const, source: 'app.lua', line: 6, hits: 12, dropped: 1,
      workers: [{ pid: 1, state: 'armed' as const, hits: 6, dropped: 0 }, { pid: 2, state: 'pending' as const, hits: 6, dropped: 1 }],
    };
    expect(formatBreakpoints([b])).toBe([
      'id  location            condition  hits  drops  workers',
      ' 3  app.lua:4 (line 6)  if n > 1     12      1  armed 1, pending 1',
    ].join('\n'));
  });
});

describe('wire form', () => {
  it.each<BreakpointEvent>([
    HIT,
    { event: 'armed', id: 2, pid: 10, state: 'armed', source: 'a.lua', line: 7, moved_from: 5 },
    { event: 'removed', id: 2, pid: 10, reason: 'deleted' },
    { event: 'ended', id: 2, reason: 'count' },
    { event: 'error', id: 2, pid: 10, message: 'x' },
    { event: 'dropped', id: 2, pid: 10, count: 1 },
  ])('%j survives toWire/fromWire', (e) => {
    const w = toWire(e);
    expect(w.method).toMatch(/^Debugger\./);
    expect(fromWire(w.method, JSON.parse(JSON.stringify(w.params)))).toEqual(e);
  });
});

/** A session of fake workers whose agents answer the Debugger domain. */
class FakeSession implements BreakpointSession {
  readonly calls: [number, string, unknown][] = [];
  readonly pids: number[] = [];
  reject: string | undefined;
  private target: Parameters<BreakpointSession['onTargetEvent']>[0][] = [];
  private agent: Parameters<BreakpointSession['onAgentEvent']>[0][] = [];

  constructor(pids: number[]) {
    this.pids.push(...pids);
  }

  targets(): Target.TargetInfo[] {
    return this.pids.map((pid) => ({ pid, attached: true }));
  }

  async call(pid: number, method: string, params?: unknown): Promise<any> {
    this.calls.push([pid, method, params]);
    if (method === 'Debugger.setBreakpoint') {
      if (this.reject) throw Object.assign(new AgentError(`${method} in worker ${pid}: ${this.reject}`), { agentMessage: this.reject });
      const { spec, id } = params as Debugger.SetBreakpointParams;
      return { breakpoint: { id, spec, state: 'armed', source: spec.url, line: spec.line! + 1, hits: 0, dropped: 0 }, moved_from: spec.line };
    }
    if (method === 'Debugger.getBreakpoints') return { breakpoints: [] };
    return {};
  }

  onTargetEvent(l: Parameters<BreakpointSession['onTargetEvent']>[0]): () => void {
    this.target.push(l);
    return () => undefined;
  }

  onAgentEvent(l: Parameters<BreakpointSession['onAgentEvent']>[0]): () => void {
    this.agent.push(l);
    return () => undefined;
  }

  attach(pid: number): void {
    this.pids.push(pid);
    for (const l of this.target) l('Target.attachedToTarget', { target: { pid, attached: true } });
  }

  fire(pid: number, method: string, params: unknown): void {
    for (const l of this.agent) l(pid, method, params);
  }
}

const hitFrom = (id: number, pid: number) => ({ id, pid, time: 1, source: 'a.lua', line: 4, frames: [] });
const tick = () => new Promise((r) => setTimeout(r, 10));

describe('probe/breakpoints.ts', () => {
  it('sets one id on every worker, re-applies it to a new worker, and counts hits in total', async () => {
    const s = new FakeSession([11, 12]);
    const bps = new Breakpoints(s);
    const events: BreakpointEvent[] = [];
    bps.onEvent((e) => events.push(e));
    const r = await bps.set({ url: 'a.lua', line: 3, count: 3, timeout_ms: 60_000 });
    expect(r.workers.map((w) => [w.pid, w.state, w.line, w.moved_from])).toEqual([[11, 'armed', 4, 3], [12, 'armed', 4, 3]]);
    expect(s.calls.filter((c) => c[1] === 'Debugger.setBreakpoint').map((c) => (c[2] as any).id)).toEqual([r.id, r.id]);

    s.fire(11, 'Debugger.hit', hitFrom(r.id, 11));
    s.attach(13);
    await tick();
    const again = s.calls.filter((c) => c[0] === 13);
    expect(again).toHaveLength(1);
    expect((again[0]![2] as any).spec.count).toBe(2); // what is left of the total
    expect(events.some((e) => e.event === 'armed' && e.pid === 13)).toBe(true);

    s.fire(12, 'Debugger.hit', hitFrom(r.id, 12));
    s.fire(13, 'Debugger.hit', hitFrom(r.id, 13));
    s.fire(11, 'Debugger.hit', hitFrom(r.id, 11)); // in flight past the count
    await tick();
    expect(events.filter((e) => e.event === 'hit').map((e) => (e as any).pid)).toEqual([11, 12, 13]);
    expect(events.filter((e) => e.event === 'removed').map((e) => [(e as any).pid, (e as any).reason]).sort()).toEqual([[11, 'count'], [12, 'count'], [13, 'count']]);
    expect(events.at(-1)).toEqual({ event: 'ended', id: r.id, reason: 'count' });
    expect(s.calls.filter((c) => c[1] === 'Debugger.removeBreakpoint').map((c) => c[0]).sort()).toEqual([11, 12, 13]);
    expect(await bps.list()).toEqual([]);
  });

  it('a spec every worker refuses is rejected with the agent\'s words and not kept', async () => {
    const s = new FakeSession([11, 12]);
    s.reject = 'condition rejected: unexpected symbol near <eof>';
    const bps = new Breakpoints(s);
    await expect(bps.set({ url: 'a.lua', line: 3, condition: 'n >' })).rejects.toThrow(/^condition rejected: unexpected symbol near <eof>$/);
    expect(await bps.list()).toEqual([]);
  });

  it('remove: every worker, then ended; an unknown id rejects', async () => {
    const s = new FakeSession([11, 12]);
    const bps = new Breakpoints(s);
    const events: BreakpointEvent[] = [];
    bps.onEvent((e) => events.push(e));
    const { id } = await bps.set({ url: 'a.lua', line: 3 });
    expect((await bps.list())[0]).toMatchObject({ id, spec: { url: 'a.lua', line: 3, timeout_ms: 600_000 }, hits: 0 });
    await bps.remove(id);
    expect(events.filter((e) => e.event === 'removed')).toHaveLength(2);
    expect(events.at(-1)).toEqual({ event: 'ended', id, reason: 'deleted' });
    await expect(bps.remove(id)).rejects.toThrow(`no breakpoint ${id}`);
    s.fire(11, 'Debugger.hit', hitFrom(id, 11));
    expect(events.filter((e) => e.event === 'hit')).toEqual([]);
  });

  it('expires at its timeout; agent events (error, dropped, removed by every agent) are relayed', async () => {
    const s = new FakeSession([11, 12]);
    const bps = new Breakpoints(s);
    const events: BreakpointEvent[] = [];
    bps.onEvent((e) => events.push(e));
    const { id } = await bps.set({ url: 'a.lua', line: 3, timeout_ms: 30 });
    await new Promise((r) => setTimeout(r, 80));
    expect(events.at(-1)).toEqual({ event: 'ended', id, reason: 'timeout' });

    const b = await bps.set({ url: 'a.lua', line: 3 });
    s.fire(11, 'Debugger.dropped', { id: b.id, count: 4 });
    s.fire(11, 'Debugger.error', { id: b.id, message: 'condition: boom' });
    s.fire(11, 'Debugger.removed', { id: b.id, reason: 'error' });
    expect(bps.get(b.id)?.dropped).toBe(4);
    s.fire(12, 'Debugger.removed', { id: b.id, reason: 'error' });
    await tick();
    expect(events.slice(-5).map((e) => e.event)).toEqual(['dropped', 'error', 'removed', 'removed', 'ended']);
    expect(events.at(-1)).toEqual({ event: 'ended', id: b.id, reason: 'error' });
  });
});
