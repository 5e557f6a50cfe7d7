// What instrumentation costs, measured apart from the main table: one runtime of the echo
// library in one worker, its instrumentation turned on and off between blocks of calls inside
// one request (bench/lua/bench_inst.lua: nffi_runtime_set_instrumented while the runtime is
// idle; off is what libnffi_noinst costs, bench/native/inst_cost shows the two alike to a
// nanosecond or so). Blocks of ~0.5-5 ms go in units of 8, A B B A B A A B, so a drift, or a
// change of where the poller runs, falls on both settings alike. Blocks 1 3 6 8 against 2 4 5 7
// of each unit (two of each setting in both) are an A/A control, printed beside the cost: what
// this table reads when there is nothing to find.
//
// How it got here, each step a confound that measuring showed. Two nginx instances, one
// loading libnffi_noinst, differ by up to a third for their whole lives on the 2-vCPU VM (an
// A/A, both uninstrumented, pinned: of 8 fresh pairs 4 within ±1.2%, one at 6.3%, 3 at 32–43%).
// Runtimes in one worker keep a luck of their own too (where their poller runs, where their
// memory lies): two instrumented runtimes against two that opted out spread −12.6..27.1% over
// 32 instances at one coroutine unpinned, around a median of 1.8%. One runtime against itself
// in separate requests, ~80 ms a setting, still spread −4.4..8.6% over 8 instances there and
// read 1.7–3.5% in three runs: a sequential caller's speed follows the placement of the worker
// and its poller, which changes every few hundred milliseconds. Each instance is fresh (so the
// median over instances is not one placement's luck either) and warmed up, then runs `rounds`
// requests of `blocks` blocks.
import { formatTable } from '../cli/format/table.js';
import { startNginx, type NginxInstance, type NginxOptions } from '../scripts/nginx-instance.js';
import { benchHttp, callsFor, medianOf } from './ffi-run.js';

export interface InstrumentationRun {
  nginx: Omit<NginxOptions, 'http'>;
  sizes: number[];
  concs: number[];
  instances: number;
  rounds: number;
  /** Blocks a request at most (units of 8: A B B A B A A B). */
  blocks: number;
  /** Each request makes this many times the main table's calls. */
  lengthen: number;
}

/** What bench_inst.lua answers. */
interface Interleaved {
  calls: number; ops_on: number; ops_off: number;
  /** medians over the request's units of eight blocks */
  cost_pct: number; cost_cpu_pct: number; aa_pct: number; aa_cpu_pct: number;
  recorded_on: number; recorded_off: number; settings_held: boolean;
}

// A request's blocks come in units of 8 (bench_inst.lua), each block at least 32 calls a light
// thread (a block starts and ends with its threads: shorter ones would time mostly that), and
// at least 8 units a request: its answer is the median over them.
const UNIT = 8, MIN_UNITS = 8, PER_THREAD = 32;

/** Calls and blocks for a row: at least `calls`, and as many blocks as fit, up to `most`. */
export function blocksFor(calls: number, conc: number, most: number): { calls: number; blocks: number } {
  const cap = Math.floor(most / UNIT) * UNIT;
  if (cap < UNIT * MIN_UNITS) throw new Error(`BENCH_INST_BLOCKS=${most}: at least ${UNIT * MIN_UNITS} (units of ${UNIT})`);
  const n = Math.max(calls, UNIT * MIN_UNITS * conc * PER_THREAD);
  return { calls: n, blocks: Math.min(cap, Math.floor(n / (conc * PER_THREAD) / UNIT) * UNIT) };
}

async function interleaved(n: NginxInstance, size: number, conc: number, calls: number, blocks: number): Promise<Interleaved> {
  const res = await fetch(n.url(`/bench_inst?size=${size}&conc=${conc}&n=${calls}&blocks=${blocks}`));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`instrumentation ${size} B × ${conc} failed: ${res.status} ${text.slice(0, 300)}\n${n.errorLogTail(10)}`);
  const r = JSON.parse(text) as Interleaved;
  // the blocks meant instrumented must have recorded latencies and the others none:
  // otherwise the table compared something other than the instrumentation
  const what = `instrumentation ${size} B × ${conc}`;
  if (!r.settings_held) throw new Error(`${what}: libnffi did not report the setting each block asked for`);
  if (r.recorded_on === 0) throw new Error(`${what}: the instrumented blocks recorded no latencies: the instrumentation did not run`);
  if (r.recorded_off !== 0) throw new Error(`${what}: ${r.recorded_off} latencies recorded while not instrumented`);
  return r;
}

function pct(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${medianOf(s).toFixed(1)}% (${s[0]!.toFixed(1)}..${s[s.length - 1]!.toFixed(1)})`;
}

/** One instance's medians over its requests, for one row. */
interface Medians { cost: number; costCpu: number; aa: number; aaCpu: number; instOps: number; baseOps: number }

export async function instrumentationTable(run: InstrumentationRun): Promise<string> {
  const byRow = new Map<string, Medians[]>();
  for (let k = 0; k < run.instances; k++) {
    const n = await startNginx({ ...run.nginx, http: benchHttp(false) });
    try {
      for (const size of run.sizes) {
        for (const conc of run.concs) {
          const { calls, blocks } = blocksFor(callsFor(size, conc) * run.lengthen, conc, run.blocks);
          // warm-up: the runtime started, the worker's traces compiled, its buffers grown
          await interleaved(n, size, conc, Math.ceil(calls / 4), UNIT * MIN_UNITS);
          const got: Interleaved[] = [];
          for (let r = 0; r < run.rounds; r++) got.push(await interleaved(n, size, conc, calls, blocks));
          const of = (f: (r: Interleaved) => number) => medianOf(got.map(f));
          const rk = `${size}/${conc}`;
          byRow.set(rk, [...(byRow.get(rk) ?? []), {
            cost: of((r) => r.cost_pct), costCpu: of((r) => r.cost_cpu_pct),
            aa: of((r) => r.aa_pct), aaCpu: of((r) => r.aa_cpu_pct),
            instOps: of((r) => r.ops_on), baseOps: of((r) => r.ops_off),
          }]);
        }
      }
    } finally {
      await n.stop();
    }
  }
  const rows: string[][] = [];
  for (const size of run.sizes) {
    for (const conc of run.concs) {
      const ms = byRow.get(`${size}/${conc}`)!;
      rows.push([
        String(size), String(conc),
        medianOf(ms.map((m) => m.instOps)).toFixed(0),
        medianOf(ms.map((m) => m.baseOps)).toFixed(0),
        pct(ms.map((m) => m.cost)), pct(ms.map((m) => m.aa)),
        pct(ms.map((m) => m.costCpu)), pct(ms.map((m) => m.aaCpu)),
      ]);
    }
  }
  const title = `instrumentation: ${run.instances} fresh instances × ${run.rounds} requests of up to ${run.blocks} blocks;`
    + ' one runtime, its instrumentation on and off block by block (units of 8: A B B A B A A B), and blocks 1 3 6 8'
    + ' against 2 4 5 7 (A/A: the noise floor); a request reads the median over its units, each cell the median over'
    + ' instances (min..max) of each one\'s median over its requests';
  return `${title}\n${formatTable(['bytes', 'conc', 'calls/s inst', 'calls/s noinst',
    'cost: calls/s', 'A/A: calls/s', 'cost: cpu/call', 'A/A: cpu/call'], rows)}\n`;
}
