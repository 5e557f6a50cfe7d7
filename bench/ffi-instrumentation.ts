// What instrumentation costs, measured apart from the main table, inside one worker:
// runtimes of the same library side by side, two instrumented and one that opted out
// (nffi.load's opts.instrument = false: no stamps, latencies or counters, what
// libnffi_noinst costs; bench/native/inst_cost shows the two alike to a nanosecond or so).
// The two instrumented ones against each other are an A/A control, printed beside the cost:
// what this table reads when there is nothing to find.
//
// Why not two nginx instances, one loading libnffi_noinst: on the 2-vCPU VM two identical
// instances differ by up to a third for their whole lives (an A/A control, both
// uninstrumented, pinned to one CPU: of 8 fresh pairs 4 within ±1.2%, one at 6.3%, 3 at
// 32–43%, each steady over its rounds: which memory a process got, not which code it ran),
// ten times the cost this table is asked to resolve. In one worker the runtimes share that
// luck. Each instance is fresh (so the median over instances is not one placement's luck
// either) and warmed up, then runs `rounds` rounds of the three runtimes.
import { formatTable } from '../cli/format/table.js';
import { startNginx, type NginxOptions } from '../scripts/nginx-instance.js';
import { benchHttp, callsFor, medianOf, runOne, type Result, type Way } from './ffi-run.js';

// Three runtimes of the echo library with one poller each, under three keys ("1", "01" and
// "001" parse alike). Which key plays which part rotates from instance to instance, and the
// order the three run in goes through all six from round to round: with the parts and the
// order fixed, a worker's first-started runtime read ~1% slower pinned at 32 coroutines, and
// unpinned at one coroutine the A/A control read 3-6% when the runtimes started in one order.
// Unpinned, the single-coroutine rows stay noisy (each poller's CPU is the scheduler's pick):
// read the cost against the A/A beside it.
const KEYS = ['1', '01', '001'] as const;
const ORDERS = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]] as const;
function way(key: string, instrumented: boolean): Way {
  const cfg = `cfg=${encodeURIComponent(key)}`;
  return instrumented ? { label: `nffi (cfg ${key}, instrumented)`, mode: 'nffi', query: cfg }
    : { label: `nffi (cfg ${key}, not instrumented)`, mode: 'nffi', query: `${cfg}&inst=0` };
}

export interface InstrumentationRun {
  nginx: Omit<NginxOptions, 'http'>;
  uds: string;
  sizes: number[];
  concs: number[];
  instances: number;
  rounds: number;
  /** Each measurement makes this many times the main table's calls. */
  lengthen: number;
}

// A run meant instrumented must have recorded latencies, and one that was not must not:
// otherwise the table compared something other than the instrumentation.
function checkRecorded(r: Result, instrumented: boolean, label: string): void {
  if (r.instrumented !== instrumented) throw new Error(`${label}: libnffi says its tasks were ${r.instrumented ? '' : 'not '}instrumented`);
  if (instrumented && !r.lat_us) throw new Error(`${label}: recorded no latencies: the instrumentation did not run`);
  if (!instrumented && r.lat_us) throw new Error(`${label}: recorded latencies while not instrumented`);
}

function pct(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${medianOf(s).toFixed(1)}% (${s[0]!.toFixed(1)}..${s[s.length - 1]!.toFixed(1)})`;
}

/** One instance's medians over its rounds, for one row. */
interface Medians { cost: number; costCpu: number; aa: number; aaCpu: number; instOps: number; baseOps: number }

export async function instrumentationTable(run: InstrumentationRun): Promise<string> {
  const byRow = new Map<string, Medians[]>();
  for (let k = 0; k < run.instances; k++) {
    const n = await startNginx({ ...run.nginx, http: benchHttp(false) });
    try {
      // instance k: which key is the first instrumented runtime, the second, the opted-out one
      const key = (part: number) => KEYS[(k + part) % 3]!;
      const ways = [way(key(0), true), way(key(1), true), way(key(2), false)];
      let row = 0;
      for (const size of run.sizes) {
        for (const conc of run.concs) {
          const go = async (w: Way, inst: boolean) => {
            const r = await runOne(n, w, size, conc, run.uds, undefined, callsFor(size, conc) * run.lengthen);
            checkRecorded(r, inst, w.label);
            return r;
          };
          // warm-up: the runtimes started (in the first row; the order goes through all six
          // over six instances: which poller starts first may decide where it runs), the
          // worker's traces compiled, its buffers grown
          for (const i of ORDERS[k % ORDERS.length]!) await go(ways[i]!, i < 2);
          const cost: number[] = [], costCpu: number[] = [], aa: number[] = [], aaCpu: number[] = [];
          const io: number[] = [], bo: number[] = [];
          for (let r = 0; r < run.rounds; r++) {
            const got: Result[] = [];
            for (const i of ORDERS[(k + row + r) % ORDERS.length]!) got[i] = await go(ways[i]!, i < 2);
            const [a, a2, b] = got as [Result, Result, Result];
            const instOps = (a.ops_per_s + a2.ops_per_s) / 2;
            cost.push((1 - instOps / b.ops_per_s) * 100);
            costCpu.push(((a.cpu_us_per_call + a2.cpu_us_per_call) / 2 / b.cpu_us_per_call - 1) * 100);
            aa.push((1 - a.ops_per_s / a2.ops_per_s) * 100);
            aaCpu.push((a.cpu_us_per_call / a2.cpu_us_per_call - 1) * 100);
            io.push(instOps);
            bo.push(b.ops_per_s);
          }
          row++;
          const rk = `${size}/${conc}`;
          byRow.set(rk, [...(byRow.get(rk) ?? []), {
            cost: medianOf(cost), costCpu: medianOf(costCpu), aa: medianOf(aa), aaCpu: medianOf(aaCpu),
            instOps: medianOf(io), baseOps: medianOf(bo),
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
  const title = `instrumentation: ${run.instances} fresh instances × ${run.rounds} rounds; in each worker two instrumented`
    + ' runtimes (their mean) against one that opted out, and the two against each other (A/A: the noise floor);'
    + ' each cell the median over instances (min..max) of each one\'s median over rounds';
  return `${title}\n${formatTable(['bytes', 'conc', 'calls/s inst', 'calls/s noinst',
    'cost: calls/s', 'A/A: calls/s', 'cost: cpu/call', 'A/A: cpu/call'], rows)}\n`;
}
