// nffi vs the unix-domain-socket way vs ngx.run_worker_thread, same payloads,
// same machine, one run. Calls are timed inside the worker (bench/lua/bench_ffi.lua).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH_LUA = join(ROOT, 'bench', 'lua');
const UDS_ECHO = join(ROOT, 'native', 'build', 'uds_echo');

interface Result {
  mode: string; size: number; conc: number; ops_per_s: number; p50_us: number; p99_us: number; cpu_us_per_call: number;
  wake?: string; wake_reason?: string;
  lat_us?: { queue: number; service: number; wakeup: number };
  wake_per_call?: { wakeups: number; loop_hits: number; signals: number };
  instrumented?: boolean;
}

interface Variant {
  key: string; label: string; mode: string; instance: 'inst' | 'noinst'; query?: string;
  optional?: boolean; // run only when BENCH_WAYS names it
}

const ALL_VARIANTS: Variant[] = [
  { key: 'nffi', label: 'nffi', mode: 'nffi', instance: 'inst' },
  // the path nffi had before the eventfd one (issue 15), forced, for the before/after in one run
  { key: 'pump', label: 'nffi (pump)', mode: 'nffi', instance: 'inst', query: 'cfg=1&wake=pump' },
  { key: 'noinst', label: 'nffi (no instrumentation)', mode: 'nffi', instance: 'noinst' },
  // pollers that always sleep when the queue is empty: nffi before its default adaptive spin
  { key: 'nospin', label: 'nffi (pollers never spin)', mode: 'nffi', instance: 'inst', query: 'cfg=nospin&poll_spin=0' },
  // the event loop never polls for a sequential call's response: nffi before that short poll
  { key: 'noloop', label: 'nffi (loop never polls)', mode: 'nffi', instance: 'inst', query: 'loop_poll=0', optional: true },
  { key: 'spin', label: 'nffi + spin', mode: 'nffi', instance: 'inst', query: 'cfg=spin&poll_spin=50&wait_spin=30' },
  { key: 'uds', label: 'unix socket', mode: 'uds', instance: 'inst' },
  { key: 'worker_thread', label: 'run_worker_thread', mode: 'worker_thread', instance: 'inst' },
  { key: 'pollspin', label: 'nffi + poll spin 20 µs', mode: 'nffi', instance: 'inst', query: 'cfg=pspin&poll_spin=20',
    optional: true },
];

// BENCH_SIZES=64,65536 BENCH_CONC=32 BENCH_REPEATS=5 BENCH_PLACEMENTS=pinned shorten or
// lengthen a run; the defaults are the full table.
function envList(name: string, dflt: number[]): number[] {
  const v = process.env[name];
  return v ? v.split(',').map((x) => Number(x)).filter((x) => Number.isFinite(x) && x > 0) : dflt;
}
const SIZES = envList('BENCH_SIZES', [64, 4096, 65536]);
const CONCURRENCY = envList('BENCH_CONC', [1, 32]);
const REPEATS = envList('BENCH_REPEATS', [3])[0]!;
// BENCH_WAYS=nffi,noinst runs only those rows (keys above); ratios that need a
// row not run print '-'
const WAYS = process.env.BENCH_WAYS?.split(',');
const VARIANTS = ALL_VARIANTS.filter((v) => (WAYS ? WAYS.includes(v.key) : !v.optional));
if (VARIANTS.length === 0) throw new Error(`BENCH_WAYS=${process.env.BENCH_WAYS}: none of ${ALL_VARIANTS.map((v) => v.key).join(',')}`);

// BENCH_INST_AA=1: both instances load libnffi_noinst.so, an A/A control of the
// instrumentation columns (what two identical builds in two nginx instances read as)
const INST_AA = process.env.BENCH_INST_AA === '1';

function benchHttp(variant: 'inst' | 'noinst'): string {
  const init = variant === 'noinst' || INST_AA
    ? 'init_by_lua_block { assert(require("nffi.native").use("noinst")) }'
    : '';
  return `
${init}
server {
    listen 127.0.0.1:$PORT;
    location = /bench { content_by_lua_block { require("bench_ffi").run() } }
}`;
}

// Where the worker (and the runtime threads it starts, which inherit its CPU mask) runs.
interface Placement { label: string; nginxMain: string; udsPrefix: string[] }

const PLACEMENTS: Placement[] = [
  { label: 'unpinned (threads on any core)', nginxMain: '', udsPrefix: [] },
  // production gateways often use worker_cpu_affinity: the worker, its runtime threads
  // and (for fairness) the unix-socket server then share one core
  { label: 'pinned (worker_cpu_affinity: one core for everything)', nginxMain: 'worker_cpu_affinity 01;',
    udsPrefix: ['taskset', '-c', '0'] },
];

async function startUdsEcho(dir: string, prefix: string[]): Promise<{ path: string; proc: ChildProcess }> {
  if (!existsSync(UDS_ECHO)) throw new Error(`${UDS_ECHO} is missing: run make -C native`);
  const path = join(dir, 'echo.sock');
  const argv = [...prefix, UDS_ECHO, path];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(path)) throw new Error('uds_echo did not start');
  return { path, proc };
}

// BENCH_CALLS=N: N calls a measurement instead (long enough to profile one with perf)
const CALLS = envList('BENCH_CALLS', [0])[0]!;

function callsFor(size: number, conc: number): number {
  if (CALLS > 0) return CALLS;
  const base = size >= 65536 ? 3000 : 10000;
  return conc > 1 ? base * 2 : base;
}

async function runOne(nginx: NginxInstance, v: Variant, size: number, conc: number, uds: string): Promise<Result> {
  const q = `mode=${v.mode}&size=${size}&conc=${conc}&n=${callsFor(size, conc)}&uds=${encodeURIComponent(uds)}`
    + (v.query ? `&${v.query}` : '');
  const res = await fetch(nginx.url(`/bench?${q}`));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${v.label} failed: ${res.status} ${text.slice(0, 300)}\n${nginx.errorLogTail(10)}`);
  const r = JSON.parse(text) as Result;
  // the instrumentation columns compare these two builds: fail rather than compare others
  const want = v.instance === 'inst' && !INST_AA;
  if (v.mode === 'nffi' && r.instrumented !== want) {
    throw new Error(`${v.label}: libnffi is ${r.instrumented ? '' : 'not '}instrumented in this instance`);
  }
  return r;
}

function median(rs: Result[]): Result {
  const sorted = [...rs].sort((a, b) => a.ops_per_s - b.ops_per_s);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function benchPlacement(place: Placement): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nffi-bench-'));
  chmodSync(dir, 0o755); // workers run as nobody and must reach the socket
  const uds = await startUdsEcho(dir, place.udsPrefix);
  const opts = { workers: 1, luaPath: [BENCH_LUA], main: `${place.nginxMain}\nthread_pool nffi_bench threads=4;` };
  const instances = {
    inst: await startNginx({ ...opts, http: benchHttp('inst') }),
    noinst: await startNginx({ ...opts, http: benchHttp('noinst') }),
  };
  try {
    const rows: string[][] = [];
    const ratios: string[][] = [];
    const spent: string[][] = [];
    for (const size of SIZES) {
      for (const conc of CONCURRENCY) {
        const runs = new Map<string, Result[]>();
        // interleave repeats so drift hits every variant alike
        for (let r = 0; r < REPEATS; r++) {
          for (const v of VARIANTS) {
            const one = await runOne(instances[v.instance], v, size, conc, uds.path);
            runs.set(v.label, [...(runs.get(v.label) ?? []), one]);
          }
        }
        const results = new Map<string, Result>();
        const cpuOf = new Map<string, number>();
        for (const v of VARIANTS) {
          const m = median(runs.get(v.label)!);
          results.set(v.label, m);
          // say so when nffi's wake-up path was not the one the label promises
          const paths = [...new Set(runs.get(v.label)!.map((r) => r.wake).filter((w) => w !== undefined))];
          const want = v.query?.includes('wake=pump') ? 'pump' : 'eventfd';
          const label = v.mode === 'nffi' && paths.some((p) => p !== want)
            ? `${v.label} [wake: ${paths.join('/')}${m.wake_reason ? `: ${m.wake_reason}` : ''}]` : v.label;
          // CPU of the worker process per call, median over the repeats on its own
          const cpu = runs.get(v.label)!.map((r) => r.cpu_us_per_call).sort((a, b) => a - b)[Math.floor(REPEATS / 2)]!;
          cpuOf.set(v.label, cpu);
          rows.push([String(size), String(conc), label, m.ops_per_s.toFixed(0), m.p50_us.toFixed(1), m.p99_us.toFixed(1),
            cpu.toFixed(2)]);
          if (m.lat_us) {
            const w = m.wake_per_call;
            spent.push([String(size), String(conc), v.label, m.lat_us.queue.toFixed(1), m.lat_us.service.toFixed(1),
              m.lat_us.wakeup.toFixed(1), m.p50_us.toFixed(1),
              w ? w.wakeups.toFixed(3) : '-', w ? w.loop_hits.toFixed(3) : '-', w ? w.signals.toFixed(3) : '-']);
          }
        }
        const has = (...ls: string[]) => ls.every((l) => results.has(l));
        const ratio = (a: string, b: string, of: (r: Result) => number) =>
          has(a, b) ? (of(results.get(a)!) / of(results.get(b)!)).toFixed(2) : '-';
        const ops = (r: Result) => r.ops_per_s;
        // instrumented vs not, paired repeat by repeat (the two ran back to back):
        // the median of the per-repeat costs and their range
        const paired = (of: (i: Result, n: Result) => number): string => {
          if (!has('nffi', 'nffi (no instrumentation)')) return '-';
          const i = runs.get('nffi')!, n = runs.get('nffi (no instrumentation)')!;
          const v = i.map((r, k) => of(r, n[k]!) * 100).sort((a, b) => a - b);
          return `${v[Math.floor(v.length / 2)]!.toFixed(1)}% (${v[0]!.toFixed(0)}..${v[v.length - 1]!.toFixed(0)})`;
        };
        ratios.push([
          String(size), String(conc),
          ratio('nffi', 'nffi (pump)', ops),
          ratio('nffi', 'nffi (pollers never spin)', ops),
          has('nffi', 'run_worker_thread') ? (cpuOf.get('run_worker_thread')! / cpuOf.get('nffi')!).toFixed(2) : '-',
          ratio('nffi (pump)', 'run_worker_thread', ops),
          ratio('nffi', 'run_worker_thread', (r) => 1 / r.p99_us),
          ratio('nffi', 'unix socket', ops),
          ratio('nffi + spin', 'unix socket', ops),
          ratio('nffi', 'run_worker_thread', ops),
          paired((i, n) => 1 - i.ops_per_s / n.ops_per_s),
          paired((i, n) => i.cpu_us_per_call / n.cpu_us_per_call - 1),
        ]);
      }
    }
    process.stdout.write(`\n== ${place.label}: FFI round trips, median of ${REPEATS}, timed inside one nginx worker\n`);
    process.stdout.write(formatTable(['bytes', 'conc', 'way', 'calls/s', 'p50 µs', 'p99 µs', 'cpu µs/call'], rows) + '\n\n');
    process.stdout.write(`ratios (calls/s)${INST_AA ? ' [BENCH_INST_AA: both instances uninstrumented, an A/A control]' : ''}\n`);
    process.stdout.write(formatTable(
      ['bytes', 'conc', 'nffi/pump', 'nffi/nospin', 'cpu worker_thread/nffi', 'pump/worker_thread', 'p99 worker_thread/nffi', 'nffi/uds', 'nffi+spin/uds',
        'nffi/worker_thread', 'instrumentation: calls/s', 'instrumentation: cpu/call'], ratios) + '\n');
    if (spent.length) {
      process.stdout.write('\nwhere a call\'s time goes (mean µs, from the runtime\'s own latency stats; the run above)\n');
      process.stdout.write(formatTable(['bytes', 'conc', 'way', 'queue', 'service', 'wake-up', 'p50 call',
        'eventfd drains/call', 'loop poll hits/call', 'signals/call'], spent) + '\n');
    }
  } finally {
    await instances.inst.stop();
    await instances.noinst.stop();
    uds.proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFfiBench(): Promise<void> {
  const only = process.env.BENCH_PLACEMENTS?.split(',');
  for (const place of PLACEMENTS) {
    if (!only || only.some((o) => place.label.startsWith(o))) await benchPlacement(place);
  }
}
