// What the FFI bench's tables share: one timed request to bench/lua/bench_ffi.lua in a
// given nginx instance, and the instances' configuration.
import { type NginxInstance } from '../scripts/nginx-instance.js';

export interface Result {
  mode: string; size: number; conc: number; ops_per_s: number; p50_us: number; p99_us: number; cpu_us_per_call: number;
  /** CPU of the worker's event-loop thread alone */
  worker_cpu_us_per_call: number;
  wake?: string; wake_reason?: string;
  lat_us?: { queue: number; service: number; wakeup: number };
  wake_per_call?: { wakeups: number; loop_hits: number; signals: number };
  spins_per_call?: { found: number; lost: number };
  instrumented?: boolean;
}

/** One way of making the call: what bench_ffi.lua is asked for. */
export interface Way { label: string; mode: string; query?: string }

// BENCH_SIZES=64,65536 BENCH_CONC=32 BENCH_REPEATS=5 BENCH_PLACEMENTS=pinned shorten or
// lengthen a run; the defaults are the full table.
export function envList(name: string, dflt: number[]): number[] {
  const v = process.env[name];
  return v ? v.split(',').map((x) => Number(x)).filter((x) => Number.isFinite(x) && x > 0) : dflt;
}

// BENCH_CALLS=N: N calls a measurement instead (long enough to profile one with perf)
const CALLS = envList('BENCH_CALLS', [0])[0]!;

export function callsFor(size: number, conc: number): number {
  if (CALLS > 0) return CALLS;
  const base = size >= 65536 ? 3000 : 10000;
  return conc > 1 ? base * 2 : base;
}

/** The http{} lines of a bench instance; `noinst` loads the uninstrumented libnffi. */
export function benchHttp(noinst: boolean): string {
  const init = noinst ? 'init_by_lua_block { assert(require("nffi.native").use("noinst")) }' : '';
  return `
${init}
server {
    listen 127.0.0.1:$PORT;
    location = /bench { content_by_lua_block { require("bench_ffi").run() } }
    location = /bench_inst { content_by_lua_block { require("bench_inst").run() } }
}`;
}

/**
 * Times `way` once in `nginx`. `instrumented`, when given, is what libnffi's build in that
 * instance must be: a comparison of the two builds fails rather than compare others.
 */
export async function runOne(nginx: NginxInstance, way: Way, size: number, conc: number, uds: string,
  instrumented?: boolean, calls = callsFor(size, conc)): Promise<Result> {
  const q = `mode=${way.mode}&size=${size}&conc=${conc}&n=${calls}&uds=${encodeURIComponent(uds)}`
    + (way.query ? `&${way.query}` : '');
  const res = await fetch(nginx.url(`/bench?${q}`));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${way.label} failed: ${res.status} ${text.slice(0, 300)}\n${nginx.errorLogTail(10)}`);
  const r = JSON.parse(text) as Result;
  if (way.mode === 'nffi' && instrumented !== undefined && r.instrumented !== instrumented) {
    throw new Error(`${way.label}: libnffi is ${r.instrumented ? '' : 'not '}instrumented in this instance`);
  }
  return r;
}

export function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
