// What instrumentation costs, measured apart from the main table: one runtime of the echo
// library in one worker, its instrumentation turned on for some runs and off for others
// (nffi_runtime_set_instrumented between runs, while it is idle: off is what libnffi_noinst
// costs, bench/native/inst_cost shows the two alike to a nanosecond or so). Two runs of each
// setting per round; the two mixed pairs against each other are an A/A control, printed
// beside the cost: what this table reads when there is nothing to find.
//
// Why one runtime against itself. Two nginx instances, one loading libnffi_noinst, differ by
// up to a third for their whole lives on the 2-vCPU VM (an A/A, both uninstrumented, pinned:
// of 8 fresh pairs 4 within ±1.2%, one at 6.3%, 3 at 32–43%, each steady over its rounds).
// Runtimes in one worker keep a luck of their own too (where their poller runs, where their
// memory lies): with two instrumented runtimes against two that opted out, one worker's
// runtimes read up to 20% apart at one coroutine unpinned, steady over rounds, and over 32
// instances the cost's spread was -12.6..27.1% around a median of 1.8%. A runtime compared
// with itself carries its luck to both sides. Each instance is fresh (so the median over
// instances is not one placement's luck either) and warmed up, then runs `rounds` rounds.
//
// The order of the four runs goes through a balanced Latin square (each run in each place once,
// each after each other once) from round to round and, for the start, from instance to
// instance: with the order fixed, a worker's first run read ~1% slower pinned at 32 coroutines.
import { formatTable } from '../cli/format/table.js';
import { startNginx, type NginxOptions } from '../scripts/nginx-instance.js';
import { benchHttp, callsFor, medianOf, runOne, type Result, type Way } from './ffi-run.js';

const ORDERS = [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]] as const;
const INSTRUMENTED = [true, true, false, false] as const;
function way(instrumented: boolean): Way {
  return { label: `nffi (${instrumented ? '' : 'not '}instrumented)`, mode: 'nffi', query: `inst=${instrumented ? 1 : 0}` };
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
      const ways = INSTRUMENTED.map(way);
      let row = 0;
      for (const size of run.sizes) {
        for (const conc of run.concs) {
          const go = async (i: number) => {
            const w = ways[i]!;
            const r = await runOne(n, w, size, conc, run.uds, undefined, callsFor(size, conc) * run.lengthen);
            checkRecorded(r, INSTRUMENTED[i]!, w.label);
            return r;
          };
          // warm-up: the runtime started, the worker's traces compiled, its buffers grown
          for (const i of ORDERS[k % ORDERS.length]!) await go(i);
          const cost: number[] = [], costCpu: number[] = [], aa: number[] = [], aaCpu: number[] = [];
          const io: number[] = [], bo: number[] = [];
          for (let r = 0; r < run.rounds; r++) {
            const got: Result[] = [];
            for (const i of ORDERS[(k + row + r) % ORDERS.length]!) got[i] = await go(i);
            const [a1, a2, b1, b2] = got as [Result, Result, Result, Result];
            const mean = (x: Result, y: Result, of: (r: Result) => number) => (of(x) + of(y)) / 2;
            const ops = (x: Result) => x.ops_per_s, cpu = (x: Result) => x.cpu_us_per_call;
            cost.push((1 - mean(a1, a2, ops) / mean(b1, b2, ops)) * 100);
            costCpu.push((mean(a1, a2, cpu) / mean(b1, b2, cpu) - 1) * 100);
            aa.push((1 - mean(a1, b1, ops) / mean(a2, b2, ops)) * 100);
            aaCpu.push((mean(a1, b1, cpu) / mean(a2, b2, cpu) - 1) * 100);
            io.push(mean(a1, a2, ops));
            bo.push(mean(b1, b2, ops));
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
  const title = `instrumentation: ${run.instances} fresh instances × ${run.rounds} rounds; in each round one runtime`
    + ' runs twice instrumented and twice not (means of two), and two mixed pairs against each other (A/A: the noise floor);'
    + ' each cell the median over instances (min..max) of each one\'s median over rounds';
  return `${title}\n${formatTable(['bytes', 'conc', 'calls/s inst', 'calls/s noinst',
    'cost: calls/s', 'A/A: calls/s', 'cost: cpu/call', 'A/A: cpu/call'], rows)}\n`;
}
