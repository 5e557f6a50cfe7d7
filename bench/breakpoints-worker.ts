// The breakpoints bench's fixture and worker (bench/breakpoints.ts): the nginx config and
// bench/lua/bench_bp.lua's markers, the worker as the bench reads it (the agent's stats, the
// fixture's counters, its hooks switched on and off, a breakpoint set around a run, the
// mode the hook settles in), and the checks every printed figure rests on: a failed one
// prints FAILED in place of its figure.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Breakpoints } from '../probe/breakpoints.js';
import type { Agent, Debugger } from '../probe/protocol-types.js';
import type { Session } from '../probe/session.js';
import type { NginxInstance } from '../scripts/nginx-instance.js';
import { wrk, type WrkResult } from './wrk.js';

export const BENCH_LUA = fileURLToPath(new URL('../../bench/lua', import.meta.url));
const FILE = 'bench_bp.lua';
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
export const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
/** Rounds of the hot-line case (its effect is large). */
export const HOT_ROUNDS = Math.min(ROUNDS, 5);
/** Calls of ten_locals per request and requests in the one-hit case. */
export const HIT_CALLS = 200;
export const HIT_REQUESTS = 5;

export function lineOf(marker: string): number {
  return readFileSync(`${BENCH_LUA}/${FILE}`, 'utf8').split('\n').findIndex((l) => l.includes(marker)) + 1;
}

export const HTTP = `
init_worker_by_lua_block { require("nffi.inspect").start() }
server {
    listen 127.0.0.1:$PORT;
    location = /jit { content_by_lua_block { require("bench_bp").jit_heavy() } }
    location = /interp { content_by_lua_block { require("bench_bp").interp_heavy() } }
    location = /hitloop { content_by_lua_block { require("bench_bp").hit_loop() } }
    location = /hot { content_by_lua_block { require("bench_bp").hot_line() } }
    location = /hot_jit_on { content_by_lua_block { require("bench_bp").hot_jit(true) } }
    location = /hot_jit_off { content_by_lua_block { require("bench_bp").hot_jit(false) } }
    location = /inspect_on { content_by_lua_block { require("bench_bp").resty_inspect(true) } }
    location = /inspect_off { content_by_lua_block { require("bench_bp").resty_inspect(false) } }
    location = /floor_on { content_by_lua_block { require("bench_bp").floor(true) } }
    location = /floor_off { content_by_lua_block { require("bench_bp").floor(false) } }
    location = /floor_line_on { content_by_lua_block { require("bench_bp").floor_line(true) } }
    location = /floor_line_off { content_by_lua_block { require("bench_bp").floor_line(false) } }
    location = /gate_on { content_by_lua_block { require("bench_bp").gate(true) } }
    location = /gate_off { content_by_lua_block { require("bench_bp").gate(false) } }
    location = /big_heap { content_by_lua_block { require("bench_bp").big_heap(tonumber(ngx.var.arg_n)) } }
    location = /watchpoint_on { content_by_lua_block { require("bench_bp").watchpoint(true) } }
    location = /watchpoint_off { content_by_lua_block { require("bench_bp").watchpoint(false) } }
    location = /watch_on { content_by_lua_block { require("bench_bp").watch(true) } }
    location = /watch_off { content_by_lua_block { require("bench_bp").watch(false) } }
    location = /interp_jit_off { content_by_lua_block { require("bench_bp").interp_jit_off() } }
    location = /counters { content_by_lua_block { require("bench_bp").counters() } }
}`;

/**
 * The handlers, and the fewest hook events a request of each must send a hook that is
 * really installed (checked in every run). interp_work (jit.off) runs 200 iterations of
 * each of two loops and calls mix() in the second: at least one line event per
 * iteration, 400 a request, and 200 calls. jit_heavy's loop runs compiled (no hook event
 * inside a trace), but the request's chunk runs in the interpreter and calls jit_heavy:
 * at least one call and one line a request.
 */
export interface Handler { path: string; name: string; minCalls: number; minLines: number; interpreted: boolean }
export const HANDLERS: Handler[] = [
  { path: '/jit', name: 'JIT-heavy', minCalls: 1, minLines: 1, interpreted: false },
  { path: '/interp', name: 'interpreter-heavy', minCalls: 200, minLines: 400, interpreted: true },
];

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A check that failed: the figure it guards is not printed. */
export class CheckFailed extends Error {}
export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new CheckFailed(msg);
}

/** What bench/lua/bench_bp.lua's /counters reports. */
interface Counters {
  resty_calls: number;
  empty_calls: number;
  /** the VM's hook now: "lua" (a Lua function) or "external hook" (a C hook), and its mask */
  hook?: { kind: string; mask: string };
  hot_runs: number;
  hot_n: number;
  /** loop instructions of interp_work and hot: FORL, IFORL (JIT off) or JFORL (compiled) */
  interp_loops: string;
  hot_loops: string;
}

export interface Mode { mode: string; reason?: string }
export const modeText = (m: Mode) => (m.reason ? `${m.mode}: ${m.reason}` : m.mode);

/**
 * The worker's breakpoint mode: the agent's own word (breakpoints.mode) or, from older
 * agents, what the hook's state shows; "no hook" with nothing armed and no hook in.
 */
function modeOf(bp: Agent.BreakpointStats | undefined): Mode {
  if (!bp) return { mode: 'unknown' };
  if (bp.armed === 0 && !bp.hook) return { mode: 'no hook' };
  if (bp.mode?.mode) return bp.mode;
  const n = bp.native;
  if (bp.hook_kind === 'lua') return { mode: 'lua hook' };
  if (n?.watching) return { mode: 'watching' };
  if (bp.hook_kind === 'c' && n) {
    return n.gated ? { mode: 'call hook', ...(n.watch_reason ? { reason: n.watch_reason } : {}) } : { mode: 'line hook' };
  }
  return { mode: 'unknown' };
}

/** A mode the agent is still on the way out of (its checks behind watching not done). */
const transitional = (m: Mode) => /not (verified|checked) yet|under way/.test(m.reason ?? '');

interface Snap { bp: Agent.BreakpointStats; c: Counters }

export class Worker {
  readonly pid: number;
  private readonly hitEvents = new Map<number, number>();

  constructor(readonly nginx: NginxInstance, readonly session: Session, readonly bps: Breakpoints) {
    this.pid = session.targets().find((t) => t.attached)!.pid;
    bps.onEvent((e) => {
      if (e.event === 'hit') this.hitEvents.set(e.id, (this.hitEvents.get(e.id) ?? 0) + 1);
    });
  }

  async get(path: string): Promise<string> {
    const res = await fetch(this.nginx.url(path));
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
    return text.trim();
  }

  async stats(): Promise<Agent.BreakpointStats> {
    return (await this.session.call(this.pid, 'Agent.getStats', {})).breakpoints;
  }

  async snap(): Promise<Snap> {
    const bp = await this.stats();
    return { bp, c: JSON.parse(await this.get('/counters')) as Counters };
  }

  /** This breakpoint as the agent counts it: hits (the line's runs it saw) and dropped. */
  async agentBreakpoint(id: number): Promise<Debugger.Breakpoint> {
    const { breakpoints } = await this.session.call(this.pid, 'Debugger.getBreakpoints', {});
    const bp = breakpoints.find((b) => b.id === id);
    if (!bp) throw new CheckFailed(`breakpoint ${id} is gone from the worker`);
    return bp;
  }

  hitsReceived(id: number): number {
    return this.hitEvents.get(id) ?? 0;
  }

  /** Hit events of breakpoint id, once they stop arriving (the writer ships them in batches). */
  async settledHits(id: number, want: number): Promise<number> {
    let last = -1;
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      const n = this.hitsReceived(id);
      if (n >= want && n === last) return n;
      last = n;
      await sleep(300);
    }
    return this.hitsReceived(id);
  }

  async withBreakpoint<T>(line: number, fn: (id: number) => Promise<T>, spec: Partial<Debugger.BreakpointSpec> = { rate: 1e6, count: 1e9 }): Promise<T> {
    const { id } = await this.bps.set({ url: FILE, line, timeout_ms: 600_000, ...spec });
    try {
      return await fn(id);
    } finally {
      await this.bps.remove(id);
    }
  }

  /** fn with an agent switch off (gate: the C hook sends every line; watch: no watchpoints). */
  without<T>(what: 'gate' | 'watch', fn: () => Promise<T>): Promise<T> {
    return this.around(`/${what}_off`, `/${what}_on`, fn);
  }

  /** fn between two fixture requests: `on`, then `off` however fn ends. */
  async around<T>(on: string, off: string, fn: (answer: string) => Promise<T>): Promise<T> {
    const answer = await this.get(on);
    try {
      return await fn(answer);
    } finally {
      await this.get(off);
    }
  }

  /** fn with one of the fixture's own hooks or helpers on (/NAME_on, /NAME_off). */
  withFixture<T>(name: string, fn: (answer: string) => Promise<T>): Promise<T> {
    return this.around(`/${name}_on`, `/${name}_off`, fn);
  }

  /**
   * The armed hook's resting mode, once the agent has settled: its walk after arming
   * done, no coroutine inside, and the same mode over three service ticks. `want`: the
   * mode this configuration is about (checked).
   */
  async settle(want?: Mode['mode']): Promise<Mode> {
    const deadline = Date.now() + 15_000;
    let same = 0;
    let last = '';
    for (;;) {
      const bp = await this.stats();
      const m = modeOf(bp);
      const n = bp.native;
      const resting = n && (n.inside === 0 || m.mode === 'lua hook') && !transitional(m) &&
        ((m.mode === 'watching' && n.watching) || (m.mode === 'call hook' && n.mask === 1 && !n.watching) ||
         (m.mode === 'line hook' && ((n.mask ?? 0) & 4) !== 0) || (m.mode === 'lua hook' && bp.hook_kind === 'lua'));
      same = resting && modeText(m) === last ? same + 1 : 0;
      last = modeText(m);
      if (same >= 3) {
        check(!want || m.mode === want, `expected the worker in mode ${want}, it is in ${modeText(m)}`);
        return m;
      }
      if (Date.now() > deadline) {
        throw new CheckFailed(`the armed hook did not come to rest in 15 s: mode ${modeText(m)}, hook ${JSON.stringify(n)}`);
      }
      await sleep(150);
    }
  }
}

/** One wrk run with the worker's state read before and after. */
export async function timed(w: Worker, path: string): Promise<{ r: WrkResult; before: Snap; after: Snap }> {
  const before = await w.snap();
  const r = await wrk(w.nginx.url(path), { seconds: SECONDS, connections: 16, cpu: 1 });
  const after = await w.snap();
  check(r.errors === 0, `wrk saw ${r.errors} errors on ${path} (${r.errorDetail})`);
  check(r.requests > 0, `no request completed on ${path}`);
  return { r, before, after };
}

export const perReq = (d: number, r: WrkResult) => d / r.requests;
export const nativeCalls = (s: Snap) => s.bp.native?.calls ?? 0;

export function noForeignHook(s: Snap, where: string): void {
  check(!s.c.hook, `${where}: the VM has a hook that should not be there (${JSON.stringify(s.c.hook)})`);
  check(s.bp.armed === 0, `${where}: the agent has ${s.bp.armed} breakpoint(s) armed`);
}

export function stillInterpreted(h: Handler, s: Snap): void {
  if (h.interpreted) {
    check(!/\bJ/.test(s.c.interp_loops), `${h.name}: interp_work was compiled (loops: ${s.c.interp_loops}); ` +
      'the handler no longer runs in the interpreter (something turned JIT back on for it)');
  }
}

export function minEvents(h: Handler, what: string, got: number, min: number): void {
  check(got >= min, `${what} on ${h.name}: ${got.toFixed(1)} hook events per request, at least ${min} expected: ` +
    'the hook was not running (or the handler ran compiled)');
}

/** The breakpoint's mode, the same after the run as before it. */
export function sameMode(before: Mode, after: Snap | Agent.BreakpointStats, what: string): void {
  const m = modeOf('bp' in after ? after.bp : after);
  check(m.mode === before.mode, `${what}: the mode changed during the run: ${modeText(before)} → ${modeText(m)}`);
}
/** Failed checks, in the order they happened; cells they guard print FAILED [n]. */
export const failures: string[] = [];
export function failed(where: string, err: unknown): string {
  if (!(err instanceof CheckFailed)) throw err;
  failures.push(`${where}: ${err.message}`);
  return `FAILED [${failures.length}]`;
}

/** Footnotes for modes with a reason, numbered in order of appearance. */
export class Notes {
  private readonly list: string[] = [];
  ref(mode: string): string {
    const i = mode.indexOf(': ');
    if (i < 0) return mode;
    const reason = mode.slice(i + 2);
    let n = this.list.indexOf(reason);
    if (n < 0) n = this.list.push(reason) - 1;
    return `${mode.slice(0, i)} (${'*'.repeat(n + 1)})`;
  }
  text(): string {
    return this.list.map((r, i) => `${'*'.repeat(i + 1)} ${r}\n`).join('');
  }
}
