// What an armed breakpoint costs, side by side in one run: req/s of a JIT-heavy and an
// interpreter-heavy handler with no hook, with a breakpoint armed on a line they never
// run (the hook at rest: watching where the machine allows it, else the call hook),
// with one hardware watchpoint alone and no hook (what the platform charges for a debug
// register in use: the floor under watching), the same breakpoint with watchpoints off
// (a call hook), a C call hook that does nothing (LuaJIT's own call-hook path: the floor
// under any hook gated by calls), every line hooked, and lua-resty-inspect's way (a Lua
// line hook calling debug.getinfo per line); the cost of one hit (a frame with 10
// locals), timed inside the worker; and a rate-limited breakpoint on a line that runs
// 100 times per request (the cost of each hit dropped past the rate, against its floor:
// the same function with JIT off and an empty line hook).
//
// Nothing is reported that was not measured: every configuration names the mode the
// worker was in (Agent.getStats → breakpoints.mode, or derived from the hook's state
// for older agents) and checks, in every run, that the hook it means to time is the one
// installed and that it was called (its own call counter grew by at least what the
// handler must send it); a hit cost is printed only when the agent recorded, and the
// probe received, every hit that was timed; a cost per dropped hit only when dropped +
// kept hits add up to the line's runs. A failed check prints FAILED in place of the
// figure, the reasons after the tables, and the bench exits non-zero.
//
// BENCH_ROUNDS and BENCH_SECONDS (default 9 and 2) shorten a run while working on it.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Breakpoints } from '../probe/breakpoints.js';
import type { Agent, Debugger } from '../probe/protocol-types.js';
import { Session } from '../probe/session.js';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';
import { wrk, type WrkResult } from './wrk.js';

const BENCH_LUA = fileURLToPath(new URL('../../bench/lua', import.meta.url));
const FILE = 'bench_bp.lua';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
/** Rounds of the hot-line case (its effect is large). */
const HOT_ROUNDS = Math.min(ROUNDS, 5);
/** Calls of ten_locals per request and requests in the one-hit case. */
const HIT_CALLS = 200;
const HIT_REQUESTS = 5;

function lineOf(marker: string): number {
  return readFileSync(`${BENCH_LUA}/${FILE}`, 'utf8').split('\n').findIndex((l) => l.includes(marker)) + 1;
}

const HTTP = `
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
interface Handler { path: string; name: string; minCalls: number; minLines: number; interpreted: boolean }
const HANDLERS: Handler[] = [
  { path: '/jit', name: 'JIT-heavy', minCalls: 1, minLines: 1, interpreted: false },
  { path: '/interp', name: 'interpreter-heavy', minCalls: 200, minLines: 400, interpreted: true },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A check that failed: the figure it guards is not printed. */
class CheckFailed extends Error {}
function check(cond: unknown, msg: string): asserts cond {
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

interface Mode { mode: string; reason?: string }
const modeText = (m: Mode) => (m.reason ? `${m.mode}: ${m.reason}` : m.mode);

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

class Worker {
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

interface Sample { rps: number; mode: string; events: number }

/** One wrk run with the worker's state read before and after. */
async function timed(w: Worker, path: string): Promise<{ r: WrkResult; before: Snap; after: Snap }> {
  const before = await w.snap();
  const r = await wrk(w.nginx.url(path), { seconds: SECONDS, connections: 16, cpu: 1 });
  const after = await w.snap();
  check(r.errors === 0, `wrk saw ${r.errors} errors on ${path} (${r.errorDetail})`);
  check(r.requests > 0, `no request completed on ${path}`);
  return { r, before, after };
}

const perReq = (d: number, r: WrkResult) => d / r.requests;
const nativeCalls = (s: Snap) => s.bp.native?.calls ?? 0;

function noForeignHook(s: Snap, where: string): void {
  check(!s.c.hook, `${where}: the VM has a hook that should not be there (${JSON.stringify(s.c.hook)})`);
  check(s.bp.armed === 0, `${where}: the agent has ${s.bp.armed} breakpoint(s) armed`);
}

function stillInterpreted(h: Handler, s: Snap): void {
  if (h.interpreted) {
    check(!/\bJ/.test(s.c.interp_loops), `${h.name}: interp_work was compiled (loops: ${s.c.interp_loops}); ` +
      'the handler no longer runs in the interpreter (something turned JIT back on for it)');
  }
}

function minEvents(h: Handler, what: string, got: number, min: number): void {
  check(got >= min, `${what} on ${h.name}: ${got.toFixed(1)} hook events per request, at least ${min} expected: ` +
    'the hook was not running (or the handler ran compiled)');
}

/** The breakpoint's mode, the same after the run as before it. */
function sameMode(before: Mode, after: Snap | Agent.BreakpointStats, what: string): void {
  const m = modeOf('bp' in after ? after.bp : after);
  check(m.mode === before.mode, `${what}: the mode changed during the run: ${modeText(before)} → ${modeText(m)}`);
}

interface Config { key: string; label: string; run(w: Worker, h: Handler): Promise<Sample> }

const NEVER = () => lineOf('BP-NEVER');

const CONFIGS: Config[] = [
  {
    key: 'none', label: 'no hook',
    async run(w, h) {
      const { r, before, after } = await timed(w, h.path);
      noForeignHook(before, 'no hook');
      noForeignHook(after, 'no hook');
      check(nativeCalls(after) === nativeCalls(before), 'no hook: the agent\'s hook was called');
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'no hook', events: 0 };
    },
  },
  {
    key: 'armed', label: 'armed elsewhere',
    run: (w, h) => w.withBreakpoint(NEVER(), async () => {
      const m = await w.settle();
      check(m.mode === 'watching' || m.mode === 'call hook', `armed elsewhere: the hook at rest is ${modeText(m)}`);
      const { r, before, after } = await timed(w, h.path);
      sameMode(m, after, 'armed elsewhere');
      const events = perReq(nativeCalls(after) - nativeCalls(before), r);
      if (m.mode === 'watching') {
        check(!before.c.hook, `armed elsewhere (watching): the VM has a hook (${JSON.stringify(before.c.hook)})`);
        check(events < 1, `armed elsewhere (watching): the agent's hook ran ${events.toFixed(1)} times per request`);
      } else {
        check(before.bp.native?.mask === 1, `armed elsewhere (call hook): hook mask ${before.bp.native?.mask}, not calls only`);
        minEvents(h, 'armed elsewhere (call hook)', events, h.minCalls);
      }
      stillInterpreted(h, after);
      return { rps: r.rps, mode: modeText(m), events };
    }),
  },
  {
    key: 'watchpoint', label: 'a watchpoint alone',
    run: (w, h) => w.withFixture('watchpoint', async (answer) => {
      if (answer !== 'ok') return { rps: NaN, mode: 'perf_event_open refused', events: 0 };
      const { r, before, after } = await timed(w, h.path);
      noForeignHook(before, 'a watchpoint alone');
      noForeignHook(after, 'a watchpoint alone');
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'no hook, 1 debug register', events: 0 };
    }),
  },
  {
    key: 'callhook', label: 'armed, watchpoints off',
    run: (w, h) => w.without('watch', () => w.withBreakpoint(NEVER(), async () => {
      const m = await w.settle('call hook');
      const { r, before, after } = await timed(w, h.path);
      sameMode(m, after, 'armed, watchpoints off');
      check(before.bp.native?.mask === 1, `armed, watchpoints off: hook mask ${before.bp.native?.mask}, not calls only`);
      const events = perReq(nativeCalls(after) - nativeCalls(before), r);
      minEvents(h, 'armed, watchpoints off', events, h.minCalls);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: modeText(m), events };
    })),
  },
  {
    key: 'floor', label: 'empty C call hook',
    run: (w, h) => w.withFixture('floor', async (answer) => {
      check(answer === 'ok', `empty C call hook: not installed (${answer})`);
      const { r, before, after } = await timed(w, h.path);
      for (const s of [before, after]) {
        check(s.c.hook?.kind === 'external hook' && s.c.hook.mask === 'c',
          `empty C call hook: the VM's hook is ${JSON.stringify(s.c.hook)}, not a C call hook`);
      }
      const events = perReq(after.c.empty_calls - before.c.empty_calls, r);
      minEvents(h, 'empty C call hook', events, h.minCalls);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'empty C call hook', events };
    }),
  },
  {
    key: 'ungated', label: 'every line hooked',
    run: (w, h) => w.without('gate', () => w.withBreakpoint(NEVER(), async () => {
      const m = await w.settle('line hook');
      const { r, before, after } = await timed(w, h.path);
      sameMode(m, after, 'every line hooked');
      check(((before.bp.native?.mask ?? 0) & 4) !== 0, `every line hooked: hook mask ${before.bp.native?.mask}, no line events`);
      const events = perReq(nativeCalls(after) - nativeCalls(before), r);
      minEvents(h, 'every line hooked', events, h.minLines);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: modeText(m), events };
    })),
  },
  {
    key: 'resty', label: 'lua-resty-inspect way',
    run: (w, h) => w.withFixture('inspect', async () => {
      const { r, before, after } = await timed(w, h.path);
      for (const s of [before, after]) {
        check(s.c.hook?.kind === 'lua' && s.c.hook.mask === 'l',
          `lua-resty-inspect way: the VM's hook is ${JSON.stringify(s.c.hook)}, not its Lua line hook`);
      }
      const events = perReq(after.c.resty_calls - before.c.resty_calls, r);
      minEvents(h, 'lua-resty-inspect way', events, h.minLines);
      stillInterpreted(h, after);
      return { rps: r.rps, mode: 'Lua line hook', events };
    }),
  },
];

/** Failed checks, in the order they happened; cells they guard print FAILED [n]. */
const failures: string[] = [];
function failed(where: string, err: unknown): string {
  if (!(err instanceof CheckFailed)) throw err;
  failures.push(`${where}: ${err.message}`);
  return `FAILED [${failures.length}]`;
}

/** Footnotes for modes with a reason, numbered in order of appearance. */
class Notes {
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

interface Column { samples: Sample[][]; failure?: string }

/** Runs of the interpreter-heavy handler, and those before which JIT was found back on
 * for interp_work (the bench turns it off again before every run). */
const interpJit = { runs: 0, foundOn: [] as string[] };

/** Runs every configuration once a round, the order turning by one each round, so no
 * configuration always runs first (or right after the same other one). */
async function reqPerSec(w: Worker, h: Handler): Promise<Map<string, Column>> {
  const cols = new Map(CONFIGS.map((c) => [c.key, { samples: [] } as Column]));
  let previous = 'start';
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < CONFIGS.length; i++) {
      const c = CONFIGS[(i + round) % CONFIGS.length]!;
      const col = cols.get(c.key)!;
      if (col.failure) continue;
      if (h.interpreted) {
        const was = await w.get('/interp_jit_off');
        if (interpJit.runs > 0 && was !== 'unknown' && was.split(',').some((op) => op !== 'IFORL')) interpJit.foundOn.push(`${was} after ${previous}`);
        interpJit.runs++;
        previous = c.label;
      }
      try {
        col.samples[round] = [await c.run(w, h)];
      } catch (err) {
        col.failure = failed(`${h.name}, ${c.label}, round ${round + 1}`, err);
      }
    }
  }
  return cols;
}

function reqPerSecTable(results: Array<[Handler, Map<string, Column>]>): string {
  const notes = new Notes();
  const rows = CONFIGS.map((c) => {
    const modes: string[] = [];
    const cells: string[] = [];
    for (const [, cols] of results) {
      const col = cols.get(c.key)!;
      const none = cols.get('none')!;
      const runs = col.samples.map((s) => s[0]!);
      const seen = [...new Set(runs.map((s) => s.mode))];
      modes.push(...seen);
      if (col.failure || none.failure) {
        cells.push(col.failure ?? `(no hook ${none.failure})`, '-', '-');
        continue;
      }
      if (seen.length > 1) {
        cells.push(failed(c.label, new CheckFailed(`the mode differed between rounds: ${seen.join(' / ')}`)), '-', '-');
        continue;
      }
      if (runs.some((s) => Number.isNaN(s.rps))) {
        cells.push('refused', '-', '-');
        continue;
      }
      // loss: the median over rounds of each round's own ratio to its no-hook run,
      // so a slow drift of the machine between rounds cancels out
      const ratio = median(runs.map((s, i) => s.rps / none.samples[i]![0]!.rps));
      const loss = c.key === 'none' ? '-' : `${((1 - ratio) * 100).toFixed(1)}%${c.key === 'resty' ? ` (${(1 / ratio).toFixed(1)}× slower)` : ''}`;
      cells.push(median(runs.map((s) => s.rps)).toFixed(0), loss, median(runs.map((s) => s.events)).toFixed(0));
    }
    const mode = [...new Set(modes)].map((m) => notes.ref(m)).join(' / ');
    return [c.label, mode, ...cells];
  });
  const header = ['configuration', 'mode'];
  for (const [h] of results) header.push(`${h.name} req/s`, 'loss', 'hook events/req');
  let jitNote = '';
  if (interpJit.foundOn.length) {
    const after = new Map<string, number>();
    for (const f of interpJit.foundOn) {
      const k = f.replace(/^\S+ after /, '');
      after.set(k, (after.get(k) ?? 0) + 1);
    }
    jitNote = `interp_work (jit.off) was found with JIT back on before ${interpJit.foundOn.length} of ${interpJit.runs} runs, ` +
      `after: ${[...after].map(([k, n]) => `${k} ×${n}`).join(', ')}; the bench turns it off again before every run\n`;
  }
  return formatTable(header, rows) + '\n' + notes.text() + jitNote;
}

// ---------------------------------------------------------------------------------------
// One hit: ten_locals called HIT_CALLS times a request, timed inside the worker. Under the
// agent's hit ring (256), so every hit is a full snapshot, not a counted drop; pauses
// between requests let the writer ship them. Every timed call must be a recorded hit.

async function perCall(w: Worker): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < HIT_REQUESTS; i++) {
    xs.push(Number((await w.get(`/hitloop?n=${HIT_CALLS}`)).split(' ')[0]));
    await sleep(300);
  }
  return Math.min(...xs);
}

interface HitRow { label: string; run(w: Worker): Promise<{ us: number; mode: string; hits: number; events: number }> }

async function hitArmed(w: Worker, what: string, want?: Mode['mode']): Promise<{ us: number; mode: string; hits: number; events: number }> {
  return w.withBreakpoint(lineOf('BP-HIT'), async (id) => {
    const m = await w.settle(want);
    const before = await w.stats();
    const us = await perCall(w);
    const after = await w.stats();
    sameMode(m, after, what);
    const timedCalls = HIT_CALLS * HIT_REQUESTS;
    const hits = after.hits - before.hits;
    const bp = await w.agentBreakpoint(id);
    const events = await w.settledHits(id, timedCalls);
    check(hits === timedCalls && bp.hits === timedCalls && events === timedCalls,
      `${what}: ${timedCalls} calls of the breakpoint line were timed in mode ${modeText(m)}, but the agent recorded ` +
      `${hits} hits (${bp.hits} on the breakpoint, ${bp.dropped} dropped) and the probe received ${events} hit events: ` +
      'no cost per hit can be given for hits that did not happen');
    return { us, mode: modeText(m), hits, events };
  });
}

const HIT_ROWS: HitRow[] = [
  {
    label: 'no breakpoint',
    async run(w) {
      const before = await w.snap();
      noForeignHook(before, 'no breakpoint');
      const us = await perCall(w);
      const after = await w.snap();
      check(after.bp.hits === before.bp.hits, 'no breakpoint: the agent recorded hits');
      return { us, mode: 'no hook', hits: 0, events: 0 };
    },
  },
  { label: 'breakpoint on the line', run: (w) => hitArmed(w, 'breakpoint on the line') },
  { label: 'every line hooked', run: (w) => w.without('gate', () => hitArmed(w, 'every line hooked', 'line hook')) },
];

async function hitCostTable(w: Worker): Promise<string> {
  const notes = new Notes();
  const rows: string[][] = [];
  let plain: number | undefined;
  for (const row of HIT_ROWS) {
    try {
      const r = await row.run(w);
      plain ??= r.us;
      const cost = row.label === 'no breakpoint' ? '-' : (r.us - plain).toFixed(1);
      rows.push([row.label, notes.ref(r.mode), r.us.toFixed(2), cost, String(HIT_CALLS * HIT_REQUESTS),
        String(r.hits), String(r.events)]);
    } catch (err) {
      rows.push([row.label, '-', failed(`one hit, ${row.label}`, err), '-', String(HIT_CALLS * HIT_REQUESTS), '-', '-']);
    }
  }
  return formatTable(['configuration', 'mode', 'µs per call', 'cost per hit µs', 'calls timed', 'hits recorded', 'hit events'], rows) +
    '\n' + notes.text();
}

// ---------------------------------------------------------------------------------------
// A breakpoint at the default rate (50/s) on a line that runs hot_n (100) times a request:
// past the rate, every hit is dropped and counted. Its floor: the same function with JIT
// off for it and an empty C line hook. Cost per dropped hit = (time per request armed −
// time per request at the floor) / dropped hits per request.

interface HotSample {
  rps: number; mode: string; usPerReq: number; linesPerReq: number;
  /** the armed case: hits dropped per request, of them dropped in C (native.muted), kept (hit events) per run */
  droppedPerReq?: number; mutedPerReq?: number; kept?: number;
}

const HOT_CONFIGS: Array<{ key: string; label: string; run(w: Worker): Promise<HotSample> }> = [
  {
    key: 'none', label: 'no breakpoint (JIT on)',
    async run(w) {
      const { r, before, after } = await timed(w, '/hot');
      noForeignHook(before, 'hot line, no breakpoint');
      noForeignHook(after, 'hot line, no breakpoint');
      const runs = after.c.hot_runs - before.c.hot_runs;
      check(runs >= r.requests, `hot line: ${runs} runs of hot() for ${r.requests} requests`);
      return { rps: r.rps, mode: 'no hook', usPerReq: 1e6 / r.rps, linesPerReq: after.c.hot_n };
    },
  },
  {
    key: 'floor', label: 'floor: JIT off for hot(), empty C line hook',
    run: (w) => w.around('/hot_jit_off', '/hot_jit_on', () => w.withFixture('floor_line', async (answer) => {
      check(answer === 'ok', `hot line floor: the empty line hook is not installed (${answer})`);
      const { r, before, after } = await timed(w, '/hot');
      for (const s of [before, after]) {
        check(s.c.hook?.kind === 'external hook' && s.c.hook.mask === 'l',
          `hot line floor: the VM's hook is ${JSON.stringify(s.c.hook)}, not a C line hook`);
      }
      check(!/\bJ/.test(after.c.hot_loops), `hot line floor: hot() ran compiled (loops: ${after.c.hot_loops})`);
      const runs = after.c.hot_runs - before.c.hot_runs;
      const events = after.c.empty_calls - before.c.empty_calls;
      check(runs >= r.requests && events >= runs * after.c.hot_n,
        `hot line floor: ${events} line events for ${runs} runs of hot(), at least ${after.c.hot_n} a run expected`);
      return { rps: r.rps, mode: 'empty C line hook', usPerReq: 1e6 / r.rps, linesPerReq: after.c.hot_n };
    })),
  },
  {
    key: 'armed', label: 'breakpoint on the line, default rate',
    run: (w) => w.withBreakpoint(lineOf('BP-HOT'), async (id) => {
      const m = await w.settle();
      const bp0 = await w.agentBreakpoint(id);
      const events0 = w.hitsReceived(id);
      const { r, before, after } = await timed(w, '/hot');
      sameMode(m, after, 'hot line breakpoint');
      const runs = after.c.hot_runs - before.c.hot_runs;
      check(runs >= r.requests, `hot line: ${runs} runs of hot() for ${r.requests} requests`);
      const lines = runs * after.c.hot_n;
      const bp = await w.agentBreakpoint(id);
      const dropped = bp.dropped - bp0.dropped;
      const kept = (await w.settledHits(id, 1)) - events0;
      const muted = (after.bp.native?.muted ?? 0) - (before.bp.native?.muted ?? 0);
      const near = (n: number) => Math.abs(n - lines) <= Math.max(2, lines * 0.005);
      // dropped counts every hit past the rate; an agent that drops in C may count its
      // muted hits apart from the breakpoint's own: then they add up with them
      const accounted = near(dropped + kept) ? dropped : near(dropped + muted + kept) ? dropped + muted : undefined;
      check(accounted !== undefined && accounted > 0,
        `hot line breakpoint (${modeText(m)}): the line ran ${lines} times (${runs} requests × ${after.c.hot_n}), the agent ` +
        `accounted for ${dropped} dropped + ${kept} kept${muted ? ` (+ ${muted} muted in C)` : ''} = ${dropped + kept}: ` +
        'no cost per dropped hit can be given');
      return { rps: r.rps, mode: modeText(m), usPerReq: 1e6 / r.rps, linesPerReq: after.c.hot_n,
        droppedPerReq: accounted / runs, mutedPerReq: muted / runs, kept };
    }, { timeout_ms: 600_000 }),
  },
];

async function hotLineTable(w: Worker): Promise<string> {
  const cols = new Map(HOT_CONFIGS.map((c) => [c.key, { samples: [] as HotSample[], failure: undefined as string | undefined }]));
  for (let round = 0; round < HOT_ROUNDS; round++) {
    for (let i = 0; i < HOT_CONFIGS.length; i++) {
      const c = HOT_CONFIGS[(i + round) % HOT_CONFIGS.length]!;
      const col = cols.get(c.key)!;
      if (col.failure) continue;
      try {
        col.samples[round] = await c.run(w);
      } catch (err) {
        col.failure = failed(`hot line, ${c.label}, round ${round + 1}`, err);
      }
    }
  }
  for (const c of HOT_CONFIGS) {
    const col = cols.get(c.key)!;
    const modes = [...new Set(col.samples.map((x) => x.mode))];
    if (!col.failure && modes.length > 1) {
      col.failure = failed(`hot line, ${c.label}`, new CheckFailed(`the mode differed between rounds: ${modes.join(' / ')}`));
    }
  }
  const notes = new Notes();
  const rows = HOT_CONFIGS.map((c) => {
    const col = cols.get(c.key)!;
    if (col.failure) return [c.label, '-', col.failure, '-', '-', '-', '-', '-'];
    const s = col.samples;
    const modes = [s[0]!.mode];
    const armed = c.key === 'armed';
    const rps = median(s.map((x) => x.rps));
    return [c.label, notes.ref(modes[0]!), rps.toFixed(0), (1e6 / rps).toFixed(2), String(s[0]!.linesPerReq),
      armed ? median(s.map((x) => x.droppedPerReq!)).toFixed(1) : '-',
      armed ? median(s.map((x) => x.mutedPerReq!)).toFixed(1) : '-',
      armed ? String(median(s.map((x) => x.kept!))) : '-'];
  });
  let cost: string;
  const armed = cols.get('armed')!;
  const floor = cols.get('floor')!;
  if (armed.failure || floor.failure) {
    cost = `cost per dropped hit: not measured (${[armed.failure, floor.failure].filter(Boolean).join(', ')})`;
  } else {
    // per round, against that round's floor, then the median
    const us = median(armed.samples.map((a, i) => (a.usPerReq - floor.samples[i]!.usPerReq) / a.droppedPerReq!));
    cost = `cost per dropped hit: (µs per request armed − at the floor) / dropped per request = ${us.toFixed(3)} µs ` +
      `(target ≤ 0.2 µs; median of ${HOT_ROUNDS} rounds' own ratios)`;
  }
  return formatTable(['configuration', 'mode', 'req/s', 'µs per request', 'line runs/request', 'dropped/request',
    'of them in C', 'kept per run'], rows) + '\n' + notes.text() + cost + '\n';
}

// ---------------------------------------------------------------------------------------
// The heap walk that watching waits for, on a heap grown by `objects` tables: CPU of the
// whole walk and of its longest slice (the worker's longest stall). Only where the worker
// reaches watching: elsewhere no walk runs, and the counters would be an older walk's.
async function heapWalk(w: Worker, objects: number): Promise<string[]> {
  await w.get(`/big_heap?n=${objects}`);
  return w.withBreakpoint(lineOf('BP-NEVER'), async () => {
    const m = await w.settle();
    const n = (await w.stats()).native!;
    if (m.mode !== 'watching') return ['-', '-', '-', '-', `no walk: ${modeText(m)}`];
    check(n.heap_objects > objects, `heap walk: ${n.heap_objects} objects walked, the heap holds more than ${objects}`);
    return [String(n.heap_objects), (n.heap_walk_us / 1000).toFixed(1), String(n.heap_slices), String(n.heap_slice_max_us), 'watching'];
  });
}

export async function runBreakpointsBench(): Promise<void> {
  const load0 = loadavg()[0]!;
  const t0 = Date.now();
  const nginx = await startNginx({ workers: 1, main: 'worker_cpu_affinity 01;', luaPath: [BENCH_LUA], http: HTTP });
  const session = await Session.open(nginx.masterPid);
  try {
    const w = new Worker(nginx, session, new Breakpoints(session));
    const results: Array<[Handler, Map<string, Column>]> = [];
    for (const h of HANDLERS) results.push([h, await reqPerSec(w, h)]);
    process.stdout.write(`\n== breakpoints: req/s, median of ${ROUNDS} wrk runs of ${SECONDS} s (worker on CPU 0, wrk on CPU 1);\n` +
      '   loss: median of each round\'s ratio to that round\'s no-hook run; hook events/req: calls of the hook\n' +
      '   that configuration installs, per request (each run checks it was installed and called)\n');
    process.stdout.write(reqPerSecTable(results));

    process.stdout.write(`\n== one hit: a frame with 10 locals, µs per call timed inside the worker (${HIT_CALLS} calls a request, ` +
      `fastest of ${HIT_REQUESTS}); every timed call must be a recorded hit and a hit event\n`);
    process.stdout.write(await hitCostTable(w));

    process.stdout.write(`\n== a breakpoint at the default rate (50/s) on a line hot() runs 100 times a request: req/s median of ${HOT_ROUNDS} ` +
      `wrk runs of ${SECONDS} s;\n   dropped + kept hits checked against the line's runs (counted in the worker)\n`);
    process.stdout.write(await hotLineTable(w));

    const walks: string[][] = [];
    for (const objects of [0, 1_000_000]) {
      try {
        walks.push(await heapWalk(w, objects));
      } catch (err) {
        walks.push([failed(`heap walk, ${objects} more tables`, err), '-', '-', '-', '-']);
      }
    }
    process.stdout.write('\n== heap walk before watching (the worker as above, then with 1,000,000 more tables)\n');
    process.stdout.write(formatTable(['heap objects', 'walk CPU ms', 'slices', 'longest slice µs (CPU)', 'then'], walks) + '\n');
  } finally {
    await session.close();
    await nginx.stop();
  }
  const load1 = loadavg()[0]!;
  process.stdout.write(`\n${((Date.now() - t0) / 60_000).toFixed(1)} min; load average (1 min) before / after: ${load0.toFixed(1)} / ${load1.toFixed(1)}` +
    `${Math.max(load0, load1) > 1.5 ? ' (other work was running on this machine: expect noise)' : ''}\n`);
  if (failures.length) {
    process.stdout.write('\nFAILED checks (their figures are not printed):\n' + failures.map((f, i) => `[${i + 1}] ${f}\n`).join(''));
    throw new Error(`breakpoints: ${failures.length} check(s) failed: see FAILED above`);
  }
}
