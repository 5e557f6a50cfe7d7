// nffi vs the unix-domain-socket way vs ngx.run_worker_thread, same payloads,
// same machine, one run. Calls are timed inside the worker (bench/lua/bench_ffi.lua).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';
import { benchHttp, envList, medianOf, runOne, type Result, type Way } from './ffi-run.js';
import { blocksFor, instrumentationTable } from './ffi-instrumentation.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH_LUA = join(ROOT, 'bench', 'lua');
const UDS_ECHO = join(ROOT, 'native', 'build', 'uds_echo');

interface Variant extends Way {
  key: string; instance: 'inst' | 'noinst' | 'flight';
  optional?: boolean; // run only when BENCH_WAYS names it
}

const ALL_VARIANTS: Variant[] = [
  { key: 'nffi', label: 'nffi', mode: 'nffi', instance: 'inst' },
  // the path nffi had before the eventfd one (issue 15), forced, for the before/after in one run
  { key: 'pump', label: 'nffi (pump)', mode: 'nffi', instance: 'inst', query: 'cfg=1&wake=pump' },
  // beside the others for a look; instrumentation's cost is measured on its own (ffi-instrumentation.ts)
  { key: 'noinst', label: 'nffi (no instrumentation)', mode: 'nffi', instance: 'noinst', optional: true },
  // pollers that always sleep when the queue is empty: nffi before its default adaptive spin
  { key: 'nospin', label: 'nffi (pollers never spin)', mode: 'nffi', instance: 'inst', query: 'cfg=nospin&poll_spin=0' },
  // the event loop never polls for a sequential call's response: nffi before that short poll
  { key: 'noloop', label: 'nffi (loop never polls)', mode: 'nffi', instance: 'inst', query: 'loop_poll=0', optional: true },
  { key: 'spin', label: 'nffi + spin', mode: 'nffi', instance: 'inst', query: 'cfg=spin&poll_spin=50&wait_spin=30' },
  { key: 'uds', label: 'unix socket', mode: 'uds', instance: 'inst' },
  { key: 'worker_thread', label: 'run_worker_thread', mode: 'worker_thread', instance: 'inst' },
  // pollers that spin for the next batch from another CPU (NFFI_FLIGHT_SPIN_US=50, opt-in;
  // its own instance: the variable is read when a runtime starts)
  { key: 'flight', label: 'nffi + spin in flight', mode: 'nffi', instance: 'flight', optional: true },
  // four pollers, as run_worker_thread's pool has four threads (the other rows: one)
  { key: 'nffi4', label: 'nffi (4 pollers)', mode: 'nffi', instance: 'inst', query: 'cfg=4', optional: true },
  { key: 'pollspin', label: 'nffi + poll spin 20 µs', mode: 'nffi', instance: 'inst', query: 'cfg=pspin&poll_spin=20',
    optional: true },
];

const SIZES = envList('BENCH_SIZES', [64, 4096, 65536]);
const CONCURRENCY = envList('BENCH_CONC', [1, 32]);
const REPEATS = envList('BENCH_REPEATS', [9])[0]!;
// BENCH_WAYS=nffi,noinst runs only those rows (keys above); ratios that need a
// row not run print '-'
const WAYS = process.env.BENCH_WAYS?.split(',');
const VARIANTS = ALL_VARIANTS.filter((v) => (WAYS ? WAYS.includes(v.key) : !v.optional));
if (VARIANTS.length === 0) throw new Error(`BENCH_WAYS=${process.env.BENCH_WAYS}: none of ${ALL_VARIANTS.map((v) => v.key).join(',')}`);

// BENCH_INST_INSTANCES=N: fresh instances for the instrumentation table (0: no table);
// BENCH_INST_ROUNDS=N: requests in each, each one interleaving the two settings
const INST_INSTANCES = (process.env.BENCH_INST_INSTANCES === '0') ? 0 : envList('BENCH_INST_INSTANCES', [16])[0]!;
const INST_ROUNDS = envList('BENCH_INST_ROUNDS', [6])[0]!;
// BENCH_INST_LENGTHEN=N: each of its measurements makes N times the main table's calls
const INST_LENGTHEN = envList('BENCH_INST_LENGTHEN', [2])[0]!;
// BENCH_INST_BLOCKS=N: at most N blocks a request, on and off in turn (units of 8, at least 64)
const INST_BLOCKS = envList('BENCH_INST_BLOCKS', [128])[0]!;

// Where the worker (and the runtime threads it starts, which inherit its CPU mask) runs.
interface Placement {
  label: string; nginxMain: string; udsPrefix: string[];
  /** after a first call of every way has started its threads: the worker's main thread on
   * CPU 0, every other thread of it on CPU 1 (run only when BENCH_PLACEMENTS names it) */
  apart?: boolean;
}

const PLACEMENTS: Placement[] = [
  { label: 'unpinned (threads on any core)', nginxMain: '', udsPrefix: [] },
  // production gateways often use worker_cpu_affinity: the worker, its runtime threads
  // and (for fairness) the unix-socket server then share one core
  { label: 'pinned (worker_cpu_affinity: one core for everything)', nginxMain: 'worker_cpu_affinity 01;',
    udsPrefix: ['taskset', '-c', '0'] },
  // what "unpinned" reads when the scheduler keeps the worker and the threads it waits for on
  // different CPUs (BENCH_PLACEMENTS=apart): unpinned rows swing between this and together
  { label: 'apart (the worker on CPU 0, its other threads on CPU 1)', nginxMain: '', udsPrefix: ['taskset', '-c', '1'],
    apart: true },
];

function threadsOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map(Number);
}

function cpusOf(tid: number): string {
  return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'))?.[1] ?? '?';
}

// Fails loudly when a thread is not where the placement says (one started after the pinning).
function placeApart(nginx: NginxInstance, pin: boolean): void {
  for (const pid of nginx.workerPids()) {
    for (const tid of threadsOf(pid)) {
      const want = tid === pid ? '0' : '1';
      if (pin) execFileSync('taskset', ['-p', '-c', want, String(tid)], { stdio: 'ignore' });
      else if (cpusOf(tid) !== want) throw new Error(`apart: thread ${tid} of worker ${pid} runs on CPUs ${cpusOf(tid)}, not ${want}`);
    }
  }
}

async function startUdsEcho(dir: string, prefix: string[]): Promise<{ path: string; proc: ChildProcess }> {
  if (!existsSync(UDS_ECHO)) throw new Error(`${UDS_ECHO} is missing: run make -C native`);
  const path = join(dir, 'echo.sock');
  const argv = [...prefix, UDS_ECHO, path];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(path)) throw new Error('uds_echo did not start');
  return { path, proc };
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
  // the uninstrumented instance only when a row asks for it (BENCH_WAYS=…,noinst)
  const inst = await startNginx({ ...opts, http: benchHttp(false) });
  const noinst = VARIANTS.some((v) => v.instance === 'noinst') ? await startNginx({ ...opts, http: benchHttp(true) }) : undefined;
  const flight = VARIANTS.some((v) => v.instance === 'flight')
    ? await startNginx({ ...opts, http: benchHttp(false), env: { NFFI_FLIGHT_SPIN_US: '50' } }) : undefined;
  const instances = { inst, noinst, flight };
  try {
    if (place.apart) {
      for (const v of VARIANTS) await runOne(instances[v.instance]!, v, 64, 1, uds.path, undefined, 200);
      for (const n of [inst, noinst, flight]) if (n) placeApart(n, true);
    }
    const rows: string[][] = [];
    const ratios: string[][] = [];
    const spent: string[][] = [];
    for (const size of SIZES) {
      for (const conc of CONCURRENCY) {
        const runs = new Map<string, Result[]>();
        // interleave repeats so drift hits every variant alike
        for (let r = 0; r < REPEATS; r++) {
          for (const v of VARIANTS) {
            const one = await runOne(instances[v.instance]!, v, size, conc, uds.path, v.instance !== 'noinst');
            runs.set(v.label, [...(runs.get(v.label) ?? []), one]);
          }
        }
        const results = new Map<string, Result>();
        const cpuOf = new Map<string, number>();
        for (const v of VARIANTS) {
          const all = runs.get(v.label)!;
          // the run of median calls/s, with each latency quantile the median over the
          // repeats on its own: one run's tail is one sample of the tail
          const m = { ...median(all), p50_us: medianOf(all.map((r) => r.p50_us)), p99_us: medianOf(all.map((r) => r.p99_us)) };
          results.set(v.label, m);
          // say so when nffi's wake-up path was not the one the label promises
          const paths = [...new Set(runs.get(v.label)!.map((r) => r.wake).filter((w) => w !== undefined))];
          const want = v.query?.includes('wake=pump') ? 'pump' : 'eventfd';
          const label = v.mode === 'nffi' && paths.some((p) => p !== want)
            ? `${v.label} [wake: ${paths.join('/')}${m.wake_reason ? `: ${m.wake_reason}` : ''}]` : v.label;
          // CPU of the worker process per call, median over the repeats on its own
          const cpu = medianOf(runs.get(v.label)!.map((r) => r.cpu_us_per_call));
          cpuOf.set(v.label, cpu);
          const wcpu = medianOf(runs.get(v.label)!.map((r) => r.worker_cpu_us_per_call));
          rows.push([String(size), String(conc), label, m.ops_per_s.toFixed(0), m.p50_us.toFixed(1), m.p99_us.toFixed(1),
            cpu.toFixed(2), wcpu.toFixed(2)]);
          if (m.lat_us) {
            const w = m.wake_per_call;
            spent.push([String(size), String(conc), v.label, m.lat_us.queue.toFixed(1), m.lat_us.service.toFixed(1),
              m.lat_us.wakeup.toFixed(1), m.p50_us.toFixed(1),
              w ? w.wakeups.toFixed(3) : '-', w ? w.loop_hits.toFixed(3) : '-', w ? w.signals.toFixed(3) : '-',
              m.spins_per_call ? `${m.spins_per_call.found.toFixed(3)}/${m.spins_per_call.lost.toFixed(3)}` : '-']);
          }
        }
        const has = (...ls: string[]) => ls.every((l) => results.has(l));
        const ratio = (a: string, b: string, of: (r: Result) => number) =>
          has(a, b) ? (of(results.get(a)!) / of(results.get(b)!)).toFixed(2) : '-';
        const ops = (r: Result) => r.ops_per_s;
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
        ]);
      }
    }
    process.stdout.write(`\n== ${place.label}: FFI round trips, median of ${REPEATS} (calls/s, p50, p99 and cpu each on its own), timed inside one nginx worker\n`);
    process.stdout.write(formatTable(['bytes', 'conc', 'way', 'calls/s', 'p50 µs', 'p99 µs', 'cpu µs/call', 'of it the event loop'], rows) + '\n\n');
    process.stdout.write('ratios (calls/s)\n');
    process.stdout.write(formatTable(
      ['bytes', 'conc', 'nffi/pump', 'nffi/nospin', 'cpu worker_thread/nffi', 'pump/worker_thread', 'p99 worker_thread/nffi', 'nffi/uds', 'nffi+spin/uds',
        'nffi/worker_thread'], ratios) + '\n');
    if (spent.length) {
      process.stdout.write('\nwhere a call\'s time goes (mean µs, from the runtime\'s own latency stats; the run above)\n');
      process.stdout.write(formatTable(['bytes', 'conc', 'way', 'queue', 'service', 'wake-up', 'p50 call',
        'eventfd drains/call', 'loop poll hits/call', 'signals/call', 'spins found/lost per call'], spent) + '\n');
    }
    if (place.apart) {
      for (const n of [inst, noinst, flight]) if (n) placeApart(n, false);
    }
    if (place.apart) {
      process.stdout.write('\ninstrumentation: measured unpinned and pinned only\n');
    } else if (INST_INSTANCES > 0) {
      process.stdout.write('\n' + await instrumentationTable({
        nginx: opts, sizes: SIZES, concs: CONCURRENCY, instances: INST_INSTANCES, rounds: INST_ROUNDS, blocks: INST_BLOCKS,
        lengthen: INST_LENGTHEN,
      }));
    } else {
      process.stdout.write('\ninstrumentation: not measured (BENCH_INST_INSTANCES=0)\n');
    }
  } finally {
    await inst.stop();
    await noinst?.stop();
    await flight?.stop();
    uds.proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFfiBench(): Promise<void> {
  // a bad BENCH_INST_BLOCKS fails now, not after the main table
  if (INST_INSTANCES > 0) blocksFor(1, 1, INST_BLOCKS);
  const only = process.env.BENCH_PLACEMENTS?.split(',');
  for (const place of PLACEMENTS) {
    const named = only?.some((o) => place.label.startsWith(o));
    if (named || (!only && !place.apart)) await benchPlacement(place);
  }
}
