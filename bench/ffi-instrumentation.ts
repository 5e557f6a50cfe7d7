// What instrumentation costs, measured apart from the main table, inside one worker: two
// runtimes of the same library side by side, one instrumented and one that opted out
// (nffi.load's opts.instrument = false: no stamps, latencies or counters, what
// libnffi_noinst costs; bench/native/inst_cost shows the two alike to a nanosecond or so).
//
// Why not two nginx instances, one loading libnffi_noinst: on the 2-vCPU VM two identical
// instances differ by up to a third for their whole lives (an A/A control, both
// uninstrumented, pinned to one CPU: of 8 fresh pairs 4 within ±1.2%, one at 6.3%, 3 at
// 32–43%, each steady over its rounds: which memory a process got, not which code it ran),
// ten times the cost this
// table is asked to resolve. In one worker both runtimes share that luck. Each pair is a
// fresh instance (so the median over pairs is not one placement's luck either), warmed up,
// then `rounds` rounds of both runtimes, which goes first alternating.
import { formatTable } from '../cli/format/table.js';
import { startNginx, type NginxOptions } from '../scripts/nginx-instance.js';
import { benchHttp, medianOf, runOne, type Result, type Way } from './ffi-run.js';

// Two runtimes of the echo library with one poller each, under two keys ("1" and "01"
// parse alike). Which of the two is instrumented alternates from instance to instance, and
// the one that plays that part is also the one started first: an A/A control (both
// instrumented) read the first-started runtime of a worker ~1% slower at 32 coroutines.
const KEYS = ['1', '01'] as const;
function way(key: string, instrumented: boolean): Way {
  return instrumented ? { label: `nffi (cfg ${key}, instrumented)`, mode: 'nffi', query: `cfg=${key}` }
    : { label: `nffi (cfg ${key}, not instrumented)`, mode: 'nffi', query: `cfg=${key}&inst=0` };
}

export interface InstrumentationRun {
  nginx: Omit<NginxOptions, 'http'>;
  uds: string;
  sizes: number[];
  concs: number[];
  pairs: number;
  rounds: number;
  /** Both runtimes instrumented: what two identical runtimes read as (the noise floor). */
  aa: boolean;
}

// A run meant instrumented must have recorded latencies, and one that was not must not:
// otherwise the pair compared something other than the instrumentation.
function checkRecorded(r: Result, instrumented: boolean, label: string): void {
  if (r.instrumented !== instrumented) throw new Error(`${label}: libnffi says its tasks were ${r.instrumented ? '' : 'not '}instrumented`);
  if (instrumented && !r.lat_us) throw new Error(`${label}: recorded no latencies: the instrumentation did not run`);
  if (!instrumented && r.lat_us) throw new Error(`${label}: recorded latencies while not instrumented`);
}

function pct(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${medianOf(s).toFixed(1)}% (${s[0]!.toFixed(1)}..${s[s.length - 1]!.toFixed(1)})`;
}

interface PairCost { ops: number; cpu: number; instOps: number; baseOps: number }

export async function instrumentationTable(run: InstrumentationRun): Promise<string> {
  const costs = new Map<string, PairCost[]>();
  for (let k = 0; k < run.pairs; k++) {
    const n = await startNginx({ ...run.nginx, http: benchHttp(false) });
    try {
      // instance k: KEYS[k % 2] is the measured (instrumented) runtime and starts first
      const INST = way(KEYS[k % 2]!, true);
      const base = way(KEYS[(k + 1) % 2]!, run.aa);
      let row = 0;
      for (const size of run.sizes) {
        for (const conc of run.concs) {
          const go = async (way: Way, inst: boolean) => {
            const r = await runOne(n, way, size, conc, run.uds);
            checkRecorded(r, inst, way.label);
            return r;
          };
          // warm-up: both runtimes started (the measured one first), their traces compiled,
          // their buffers grown
          await go(INST, true);
          await go(base, run.aa);
          const ops: number[] = [], cpu: number[] = [], io: number[] = [], bo: number[] = [];
          for (let r = 0; r < run.rounds; r++) {
            const first = (k + row + r) % 2 === 0;
            let a: Result, b: Result;
            if (first) { a = await go(INST, true); b = await go(base, run.aa); }
            else { b = await go(base, run.aa); a = await go(INST, true); }
            ops.push((1 - a.ops_per_s / b.ops_per_s) * 100);
            cpu.push((a.cpu_us_per_call / b.cpu_us_per_call - 1) * 100);
            io.push(a.ops_per_s);
            bo.push(b.ops_per_s);
          }
          row++;
          const key = `${size}/${conc}`;
          costs.set(key, [...(costs.get(key) ?? []),
            { ops: medianOf(ops), cpu: medianOf(cpu), instOps: medianOf(io), baseOps: medianOf(bo) }]);
        }
      }
    } finally {
      await n.stop();
    }
  }
  const rows: string[][] = [];
  for (const size of run.sizes) {
    for (const conc of run.concs) {
      const ps = costs.get(`${size}/${conc}`)!;
      rows.push([
        String(size), String(conc),
        medianOf(ps.map((p) => p.instOps)).toFixed(0),
        medianOf(ps.map((p) => p.baseOps)).toFixed(0),
        pct(ps.map((p) => p.ops)),
        pct(ps.map((p) => p.cpu)),
      ]);
    }
  }
  const title = `instrumentation: ${run.pairs} fresh instances × ${run.rounds} rounds, in each worker an instrumented`
    + ` runtime against ${run.aa ? 'a second instrumented one [BENCH_INST_AA: an A/A control]' : 'one that opted out'}`
    + '; cost = median over instances (min..max) of each one\'s median over rounds';
  return `${title}\n${formatTable(['bytes', 'conc', `calls/s inst`, `calls/s ${run.aa ? 'other' : 'noinst'}`,
    'cost: calls/s', 'cost: cpu/call'], rows)}\n`;
}
