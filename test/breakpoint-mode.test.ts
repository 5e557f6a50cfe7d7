// Which breakpoint mode each worker is in, as users see it: the agent's mode object read
// defensively (absent from older agents: "unknown"), the `workers` table (80 columns, the
// reason whole on its own line) and its JSON, the `armed` line and NDJSON of `breakpoint`, and
// the mode carried from setBreakpoint answers and agent events through probe/breakpoints.ts and
// serve's wire form.
import { describe, expect, it } from 'vitest';
import { eventJson, formatEvent } from '../cli/format/hit.js';
import { formatWorkers, modeText } from '../cli/format/workers.js';
import { readMode, workerInfo, workerMode, type ModeView, type WorkerInfo } from '../store/workers.js';
import { fromWire, toWire } from '../probe/breakpoint-wire.js';
import { Breakpoints, type BreakpointEvent, type BreakpointSession } from '../probe/breakpoints.js';
import type { Agent, Debugger, Target } from '../probe/protocol-types.js';
import type { WorkerResult } from '../probe/session.js';

const TRAPS = 'traps not delivered on this machine';
const PERF = 'perf_event_open: Permission denied';

describe('readMode: the agent\'s mode object, or unknown and why', () => {
  it.each<[string, unknown, ModeView]>([
    ['watching', { mode: 'watching' }, { mode: 'watching' }],
    ['call hook with its reason', { mode: 'call hook', reason: TRAPS }, { mode: 'call hook', reason: TRAPS }],
    ['line hook with its reason', { mode: 'line hook', reason: PERF }, { mode: 'line hook', reason: PERF }],
    ['lua hook with its reason', { mode: 'lua hook', reason: 'libnffi not loaded' }, { mode: 'lua hook', reason: 'libnffi not loaded' }],
    ['absent (an older agent)', undefined, { mode: 'unknown', reason: 'the agent does not report it' }],
    ['null', null, { mode: 'unknown', reason: 'the agent does not report it' }],
    ['a bare string', 'watching', { mode: 'unknown', reason: 'the agent does not report it' }],
    ['an empty Lua table', [], { mode: 'unknown', reason: 'the agent does not report it' }],
    ['no mode field', { reason: 'x' }, { mode: 'unknown', reason: 'the agent does not report it' }],
    ['a mode this CLI does not know', { mode: 'teleport', reason: 'x' }, { mode: 'unknown', reason: 'the agent reported mode "teleport"' }],
    ['a reason that is not a string is left out', { mode: 'call hook', reason: 42 }, { mode: 'call hook' }],
    ['an empty reason is left out', { mode: 'watching', reason: '' }, { mode: 'watching' }],
  ])('%s', (_name, raw, view) => expect(readMode(raw)).toEqual(view));

  it.each<[ModeView, string]>([
    [{ mode: 'watching' }, 'watching'],
    [{ mode: 'call hook', reason: TRAPS }, `call hook: ${TRAPS}`],
    [{ mode: 'unknown', reason: 'the agent does not report it' }, 'unknown: the agent does not report it'],
  ])('modeText(%j) = %s', (m, text) => expect(modeText(m)).toBe(text));
});

const VERSIONS: Agent.Versions = { nginx: '1.22.1', ngx_lua: '0.10.23', luajit: 'LuaJIT 2.1.0-beta3', agent: '0.1.0' };
const FLAGS = ['SSE3', 'SSE4.1', 'BMI2', 'fold', 'cse', 'dce', 'fwd', 'dse', 'narrow', 'loop', 'abc', 'sink', 'fuse'];
const target = (pid: number, extra: Partial<Target.TargetInfo> = {}): Target.TargetInfo =>
  ({ pid, worker_id: pid % 10, attached: true, user: 'nobody', versions: VERSIONS, jit: { enabled: true, flags: FLAGS }, ...extra });
const stats = (pid: number, breakpoints: unknown): WorkerResult<Agent.GetStatsResult> =>
  ({ pid, result: { max_slice_ms: 0, max_slice_cpu_ms: 0, slices: 0, methods: {}, breakpoints: breakpoints as Agent.BreakpointStats } });

describe('workers: the mode of each worker from Agent.getStats', () => {
  it.each<[string, Target.TargetInfo, WorkerResult<Agent.GetStatsResult> | undefined, ModeView]>([
    ['watching', target(1), stats(1, { mode: { mode: 'watching' } }), { mode: 'watching' }],
    ['a hook, and why', target(1), stats(1, { mode: { mode: 'call hook', reason: TRAPS } }), { mode: 'call hook', reason: TRAPS }],
    ['an agent without the field', target(1), stats(1, { hits: 0 }), { mode: 'unknown', reason: 'agent 0.1.0 does not report it' }],
    ['an answer without breakpoints', target(1), stats(1, undefined), { mode: 'unknown', reason: 'agent 0.1.0 does not report it' }],
    ['getStats failed', target(1), { pid: 1, error: 'Agent.getStats in worker 1: timeout' }, { mode: 'unknown', reason: 'Agent.getStats failed: Agent.getStats in worker 1: timeout' }],
    ['no answer at all', target(1), undefined, { mode: 'unknown', reason: 'Agent.getStats failed: no answer' }],
    ['not attached', { pid: 1, attached: false, error: 'no agent' }, undefined, { mode: 'unknown', reason: 'not attached: no agent' }],
  ])('%s', (_name, t, st, view) => expect(workerMode(t, st)).toEqual(view));

  it('--json carries breakpoint_mode per worker', () => {
    expect(workerInfo(target(1), stats(1, { mode: { mode: 'lua hook', reason: PERF } }))).toEqual({
      pid: 1, worker_id: 1, user: 'nobody', versions: VERSIONS, jit: { enabled: true, flags: FLAGS },
      breakpoint_mode: { mode: 'lua hook', reason: PERF },
    });
  });
});

const info = (pid: number, mode: ModeView, extra: Partial<WorkerInfo> = {}): WorkerInfo =>
  ({ pid, worker_id: pid % 10, user: 'nobody', versions: VERSIONS, jit: { enabled: true, flags: FLAGS }, breakpoint_mode: mode, ...extra });

describe('the workers table', () => {
  it('a column for the mode; the reason whole on its own line; the JIT flags once', () => {
    const out = formatWorkers([info(4243, { mode: 'watching' }), info(4244, { mode: 'call hook', reason: TRAPS })]);
    expect(out).toBe([
      'pid   id  user    nginx   ngx_lua  luajit       agent  jit  bp mode',
      '4243   3  nobody  1.22.1  0.10.23  2.1.0-beta3  0.1.0  on   watching',
      '4244   4  nobody  1.22.1  0.10.23  2.1.0-beta3  0.1.0  on   call hook',
      `worker 4244 bp mode: call hook: ${TRAPS}`,
      `jit flags: ${FLAGS.join(' ')}`,
    ].join('\n'));
  });

  it('fits 80 columns with 7-digit pids, a longer user and an OpenResty LuaJIT', () => {
    const wide: Agent.Versions = { nginx: '1.27.1.2', ngx_lua: '0.10.27', luajit: 'LuaJIT 2.1.1723681758', agent: '0.1.0' };
    const out = formatWorkers([
      info(4194301, { mode: 'line hook', reason: PERF }, { user: 'www-data', versions: wide }),
      info(4194302, { mode: 'unknown', reason: 'agent 0.1.0 does not report it' }, { user: 'www-data', versions: wide }),
    ]);
    const lines = out.split('\n');
    for (const l of lines.slice(0, 3)) expect(l.length, l).toBeLessThanOrEqual(80);
    expect(lines[1]).toMatch(/ line hook$/);
    expect(lines[2]).toMatch(/ unknown$/);
    expect(lines).toContain(`worker 4194301 bp mode: line hook: ${PERF}`);
    expect(lines).toContain('worker 4194302 bp mode: unknown: agent 0.1.0 does not report it');
  });

  it('a long reason is printed whole, not cut (--json has it too)', () => {
    const long = `${PERF} (kernel.perf_event_paranoid = 3 and no CAP_PERFMON; run as root or lower it to 2)`;
    const out = formatWorkers([info(4243, { mode: 'call hook', reason: long })]);
    expect(out.split('\n')).toContain(`worker 4243 bp mode: call hook: ${long}`);
  });

  it('an unattached worker: dashes and its error; JIT flags per worker when they differ', () => {
    const out = formatWorkers([
      { pid: 7, worker_id: null, user: null, versions: null, jit: null, breakpoint_mode: { mode: 'unknown', reason: 'not attached: no agent' }, error: 'no agent' },
      info(8, { mode: 'watching' }),
      info(9, { mode: 'watching' }, { jit: { enabled: false, flags: ['SSE2'] } }),
    ]);
    expect(out.split('\n')).toEqual([
      'pid  id  user    nginx   ngx_lua  luajit       agent  jit  bp mode',
      '  7  -   -       -       -        -            -      -    -',
      '  8   8  nobody  1.22.1  0.10.23  2.1.0-beta3  0.1.0  on   watching',
      '  9   9  nobody  1.22.1  0.10.23  2.1.0-beta3  0.1.0  off  watching',
      'worker 7: no agent',
      `worker 8 jit flags: ${FLAGS.join(' ')}`,
      'worker 9 jit flags: SSE2',
    ]);
  });
});

type Armed = Extract<BreakpointEvent, { event: 'armed' }>;
const armed = (extra: Partial<Armed> = {}): Armed => ({ event: 'armed', id: 3, pid: 1234, state: 'armed', source: 'app.lua', line: 42, ...extra });

describe('the armed line and its NDJSON say the mode per worker', () => {
  it.each<[string, Armed, string, unknown]>([
    ['watching', armed({ mode: { mode: 'watching' } }), 'bp 3 armed on worker 1234 at app.lua:42 (watching)', { mode: 'watching' }],
    ['a call hook and why', armed({ mode: { mode: 'call hook', reason: TRAPS } }), `bp 3 armed on worker 1234 at app.lua:42 (call hook: ${TRAPS})`, { mode: 'call hook', reason: TRAPS }],
    ['the lua hook and why', armed({ mode: { mode: 'lua hook', reason: PERF } }), `bp 3 armed on worker 1234 at app.lua:42 (lua hook: ${PERF})`, { mode: 'lua hook', reason: PERF }],
    ['an older agent: unknown', armed(), 'bp 3 armed on worker 1234 at app.lua:42 (mode unknown)', { mode: 'unknown', reason: 'the agent does not report it' }],
    ['a mode this CLI does not know: named, and as given in NDJSON', armed({ mode: { mode: 'teleport' } as unknown as Debugger.BreakpointMode }),
      'bp 3 armed on worker 1234 at app.lua:42 (mode unknown: the agent reported mode "teleport")', { mode: 'teleport' }],
    ['a task breakpoint (no line) without one: nothing', armed({ source: undefined, line: undefined }), 'bp 3 armed on worker 1234', undefined],
    ['pending: the usual words; NDJSON still has it', armed({ state: 'pending', source: undefined, line: undefined, mode: { mode: 'watching' } }),
      'bp 3 pending on worker 1234: the file is not loaded yet, it arms when it loads', { mode: 'watching' }],
  ])('%s', (_name, e, human, mode) => {
    expect(formatEvent(e)).toBe(human);
    expect(eventJson(e)?.mode).toEqual(mode);
  });

  it('serve\'s wire form keeps the mode', () => {
    const e = armed({ mode: { mode: 'call hook', reason: TRAPS } });
    const w = toWire(e);
    expect(w.params.mode).toEqual({ mode: 'call hook', reason: TRAPS });
    expect(fromWire(w.method, JSON.parse(JSON.stringify(w.params)))).toEqual(e);
    expect(fromWire('Debugger.armed', { ...w.params, mode: 'junk' })).not.toHaveProperty('mode');
  });
});

/** Workers whose agents answer setBreakpoint with `modes[pid]` (absent: an older agent). */
class ModeSession implements BreakpointSession {
  private agent: Parameters<BreakpointSession['onAgentEvent']>[0][] = [];

  constructor(private readonly modes: Record<number, Debugger.BreakpointMode | undefined>) {}

  targets(): Target.TargetInfo[] {
    return Object.keys(this.modes).map((pid) => ({ pid: Number(pid), attached: true }));
  }

  async call(pid: number, method: string, params?: unknown): Promise<any> {
    if (method !== 'Debugger.setBreakpoint') return {};
    const { spec, id } = params as Debugger.SetBreakpointParams;
    const mode = this.modes[pid];
    return { breakpoint: { id, spec, state: 'armed', source: spec.url, line: spec.line, hits: 0, dropped: 0 }, ...(mode ? { mode } : {}) };
  }

  onTargetEvent(): () => void {
    return () => undefined;
  }

  onAgentEvent(l: Parameters<BreakpointSession['onAgentEvent']>[0]): () => void {
    this.agent.push(l);
    return () => undefined;
  }

  fire(pid: number, method: string, params: unknown): void {
    for (const l of this.agent) l(pid, method, params);
  }
}

describe('probe/breakpoints.ts carries the mode', () => {
  it('from each worker\'s setBreakpoint answer to its armed event and the per-worker state', async () => {
    const s = new ModeSession({ 11: { mode: 'watching' }, 12: { mode: 'call hook', reason: TRAPS }, 13: undefined });
    const bps = new Breakpoints(s);
    const events: BreakpointEvent[] = [];
    bps.onEvent((e) => events.push(e));
    const r = await bps.set({ url: 'a.lua', line: 4 });
    const modes = events.filter((e): e is Armed => e.event === 'armed').map((e) => [e.pid, e.mode]);
    expect(modes).toEqual([[11, { mode: 'watching' }], [12, { mode: 'call hook', reason: TRAPS }], [13, undefined]]);
    expect(bps.get(r.id)!.workers.map((w) => w.mode)).toEqual([{ mode: 'watching' }, { mode: 'call hook', reason: TRAPS }, undefined]);
  });

  it('a worker whose mode changes while armed announces it again; the same mode does not', async () => {
    const s = new ModeSession({ 11: { mode: 'watching' } });
    const bps = new Breakpoints(s);
    const { id } = await bps.set({ url: 'a.lua', line: 4 });
    const events: BreakpointEvent[] = [];
    bps.onEvent((e) => events.push(e));
    const b = { id, spec: { url: 'a.lua', line: 4 }, state: 'armed', source: 'a.lua', line: 4, hits: 0, dropped: 0 };
    s.fire(11, 'Debugger.armed', { breakpoint: b, mode: { mode: 'watching' } });
    s.fire(11, 'Debugger.armed', { breakpoint: b });
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual([]);
    s.fire(11, 'Debugger.armed', { breakpoint: b, mode: { mode: 'line hook', reason: 'a late trap: lines on until a full heap walk' } });
    await new Promise((r) => setTimeout(r, 10));
    expect(events.map((e) => formatEvent(e))).toEqual(['bp 1 armed on worker 11 at a.lua:4 (line hook: a late trap: lines on until a full heap walk)']);
  });
});
