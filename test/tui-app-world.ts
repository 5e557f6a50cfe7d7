// A fake nginx behind test/harness/fake-client.ts for the `attach` TUI's tests: a master (100)
// with workers 101 and 102, two nffi runtimes whose counters move with each sample, pending
// tasks, coroutines (some waiting on those tasks), stacks with locals, and breakpoints whose
// hits the test pushes. Everything is a function of the fake clock, so frames are the same
// on every run.
import type { BreakpointEvent } from '../client/client.js';
import type { Debugger, FFI, Lua, Target } from '../probe/protocol-types.js';
import { FakeClient } from './harness/fake-client.js';

export const T0 = Date.UTC(2025, 0, 15, 10, 30, 0);
export const STEP_MS = 500;

const VERSIONS = { nginx: '1.22.1', ngx_lua: '0.10.23', luajit: 'LuaJIT 2.1.0-beta3', agent: '0.1.0' };

export function worker(pid: number, id: number): Target.TargetInfo {
  return { pid, master_pid: 100, worker_id: id, attached: true, user: 'nobody', versions: VERSIONS, jit: { enabled: true, flags: [] } };
}

const lat = (p50: number, p99: number): FFI.Latency => ({ p50, p99, max: p99 * 2, count: 100 });

export interface WorldOptions {
  workers?: number;
  /** Pending tasks per worker (the load test: thousands). */
  tasksPerWorker?: number;
}

export class World {
  readonly client = new FakeClient();
  readonly clock = { now: T0 };
  /** Samples asked so far (FFI.getRuntimes answers count them per worker 101). */
  tick = 0;
  readonly removed: number[] = [];
  readonly specs: Debugger.BreakpointSpec[] = [];
  closed = 0;
  failRuntimes: number | undefined;
  private nextBp = 1;
  private readonly tasks = new Map<number, FFI.Task[]>();
  private readonly coroutines = new Map<number, Lua.Coroutine[]>();

  constructor(opts: WorldOptions = {}) {
    const n = opts.workers ?? 2;
    this.client.workers = Array.from({ length: n }, (_, i) => worker(101 + i, i));
    for (const w of this.client.workers) this.populate(w.pid, opts.tasksPerWorker);
    const c = this.client;
    c.handlers['Agent.getStats'] = (pid) => ({
      max_slice_ms: 0, max_slice_cpu_ms: 0, slices: 0, methods: {},
      breakpoints: { mode: pid === 101 ? { mode: 'watching' } : { mode: 'call hook', reason: 'traps not delivered on this machine' } },
    });
    c.handlers['FFI.getRuntimes'] = (pid) => {
      if (pid === this.failRuntimes) throw new Error('agent busy: 64 requests queued');
      if (pid === 101) this.tick++;
      return { runtimes: this.runtimes(pid) };
    };
    c.handlers['FFI.getTasks'] = (pid, p: FFI.GetTasksParams = {}) => {
      const all = (this.tasks.get(pid) ?? []).filter((t) => p.after_id === undefined || t.id > p.after_id);
      const max = p.max ?? 1000;
      return { tasks: all.slice(0, max), truncated: all.length > max, ...(p.total !== false && { total: all.length }) };
    };
    c.handlers['Lua.getCoroutines'] = (pid) => ({ coroutines: this.coroutines.get(pid) ?? [] });
    c.handlers['Lua.getStack'] = (pid, p: Lua.GetStackParams) => this.stack(pid, p.coroutine, Boolean(p.locals));
    c.setBreakpointImpl = async (spec) => {
      this.specs.push(spec);
      const id = this.nextBp++;
      const ws = this.client.workers.map((w) => ({ pid: w.pid, state: 'armed' as const, hits: 0, dropped: 0, source: `/srv/app/${spec.url}`, line: spec.line ?? 0 }));
      setImmediate(() => {
        for (const w of ws) this.emit({ event: 'armed', id, pid: w.pid, state: 'armed', source: w.source, line: w.line, mode: { mode: 'watching' } });
      });
      return { id, workers: ws, unreached: [] };
    };
    c.removeImpl = async (id) => {
      this.removed.push(id);
      return true;
    };
    c.close = async () => { this.closed++; };
  }

  now = (): number => this.clock.now;

  advance(ms = STEP_MS): void {
    this.clock.now += ms;
  }

  emit(e: BreakpointEvent): void {
    this.client.breakpoint.emit(e);
  }

  hit(id: number, pid: number, n: number, extra: Partial<Extract<BreakpointEvent, { event: 'hit' }>> = {}): void {
    this.emit({
      event: 'hit', id, pid, time: this.clock.now / 1000, source: '/srv/app/handler.lua', line: 42,
      frames: [{ function: 'handle', source: '/srv/app/handler.lua', line: 42, what: 'Lua' }, { function: '?', source: '=content_by_lua(nginx.conf:40)', line: 2, what: 'main' }],
      locals: { n: { type: 'number', value: n }, user: { type: 'string', value: n % 2 ? 'bob' : 'アリス' } },
      upvalues: { cache: { type: 'table', entries: [{ key: { type: 'string', value: 'size' }, value: { type: 'number', value: 12 } }] } },
      varargs: [],
      request: { method: 'GET', uri: `/items/${n}` },
      ...extra,
    });
  }

  private runtimes(pid: number): FFI.RuntimeStats[] {
    const k = this.tick + (pid - 101) * 3;
    const wave = [0, 2, 5, 9, 14, 9, 5, 2][k % 8]!;
    const rt = (name: string, enq: number, depth: number, fly: number, p99: number, extra: Partial<FFI.RuntimeStats> = {}): FFI.RuntimeStats => ({
      name, lib: `/usr/lib/lib${name}.so`, unloaded: false, enqueued: enq, polled: enq - depth, responded: enq - depth - fly,
      completed: enq - depth - fly, timeouts: 0, rejected: 0, late: 0, depth, in_flight: fly, live: depth + fly, max_queue: 4096, wake: 'eventfd',
      latency_ms: { queue: lat(p99 / 20, p99 / 2), service: lat(p99 / 10, p99 * 0.8), wakeup: lat(0.02, 0.09), total: lat(p99 / 8, p99) },
      ...extra,
    } as FFI.RuntimeStats);
    return [
      rt('echo', 1000 * this.tick, wave, 1, 0.35),
      rt('imgresize', 40 * this.tick + 1300, 1200 + 4 * wave + (pid - 101) * 50, 8, 240, {
        timeouts: 2 * this.tick, rejected: pid === 102 ? 3 : 0,
      }),
    ];
  }

  private populate(pid: number, many?: number): void {
    const base = pid * 1000;
    const tasks: FFI.Task[] = [];
    const cos: Lua.Coroutine[] = [];
    const frames = (fn: string, src: string, line: number): Lua.Frame[] => [{ function: fn, source: src, line, what: 'Lua' }];
    // as the agent has them: a waiting coroutine's top frame is the C function it yields in
    const yielding = (fn: string, src: string, line: number): Lua.Frame[] => [{ function: 'co_yield', source: '=[C]', line: -1, what: 'C' }, ...frames(fn, src, line)];
    const count = many ?? 3;
    for (let i = 0; i < count; i++) {
      const co = 20 + i;
      const id = base + i + 1;
      tasks.push({
        id, runtime: i % 3 === 2 ? 'echo' : 'imgresize', method: i % 3 === 2 ? 'echo' : 'resize', state: i === 0 ? 'polled' : 'pending',
        age_ms: 1800 - i * 600 + (pid - 101) * 50, req_len: 200, req_preview: i === 1 ? '{"w":1280,"src":"/img/日本語.png"}' : `{"w":640,"n":${i}}`,
        coroutine: { id: co, frames: yielding('resize', '/srv/app/images/resize.lua', 88), request: { method: 'GET', uri: `/img/resize?w=${640 + i}` } },
      });
      if (i < 3) {
        cos.push({
          id: co, kind: 'request', state: 'suspended', wait: { kind: 'ffi', task_id: id },
          frames: yielding('resize', '/srv/app/images/resize.lua', 88), request: { method: 'GET', uri: `/img/resize?w=${640 + i}` },
        });
      }
    }
    cos.push(
      { id: 3, kind: 'timer', state: 'suspended', wait: { kind: 'ngx.sleep' }, frames: frames('loop', '/srv/app/health.lua', 30) },
      { id: 5, kind: 'thread', state: 'suspended', wait: { kind: 'cosocket', detail: 'receive' }, frames: frames('pump', '/srv/app/pump.lua', 51) },
      { id: 9, kind: 'user', state: 'dead', frames: [] },
      { id: 11, kind: 'request', state: 'running', frames: frames('handle', '/srv/app/handler.lua', 42), request: { method: 'POST', uri: '/api/\x1b]0;pwned\x07x' } },
    );
    this.tasks.set(pid, tasks);
    this.coroutines.set(pid, cos);
  }

  private stack(pid: number, co: number, locals: boolean): Lua.GetStackResult {
    const v = (type: Lua.Value['type'], value?: unknown): Lua.Value => ({ type, ...(value !== undefined && { value }) });
    const with_ = <T extends object>(f: T, vars: Partial<Lua.StackFrame>): T => (locals ? { ...f, ...vars } : f);
    return {
      request: { method: 'GET', uri: `/img/resize?co=${co}&pid=${pid}` },
      frames: [
        with_({ level: 0, function: 'yield', source: '=[C]', line: -1, what: 'C' as const }, { locals: [], upvalues: [], varargs: [] }),
        with_({ level: 1, function: 'resize', source: '/srv/app/images/resize.lua', line: 88, what: 'Lua' as const }, {
          locals: [
            { name: 'w', value: v('number', 640) },
            { name: 'opts', value: { type: 'table', entries: [
              { key: v('string', 'fit'), value: v('string', 'cover') },
              { key: v('string', 'quality'), value: v('number', 85) },
            ] } },
            { name: 'err', value: v('nil') },
          ],
          upvalues: [{ name: 'rt', value: { type: 'cdata', ctype: 'struct nffi_rt *', value: '0x55d0c0ffee00' } }],
          varargs: [],
        }),
        with_({ level: 2, function: '?', source: '=content_by_lua(nginx.conf:40)', line: 2, what: 'main' as const }, { locals: [], upvalues: [], varargs: [] }),
      ],
    };
  }
}
