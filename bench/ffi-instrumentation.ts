// What instrumentation costs, measured apart from the main table, inside one worker:
// runtimes of the same library side by side, two instrumented and two that opted out
// (nffi.load's opts.instrument = false: no stamps, latencies or counters, what
// libnffi_noinst costs; bench/native/inst_cost shows the two alike to a nanosecond or so).
// Two mixed pairs against each other are an A/A control, printed beside the cost:
// what this table reads when there is nothing to find.
//
// Why not two nginx instances, one loading libnffi_noinst: on the 2-vCPU VM two identical
// instances differ by up to a third for their whole lives (an A/A control, both
// uninstrumented, pinned to one CPU: of 8 fresh pairs 4 within ±1.2%, one at 6.3%, 3 at
// 32–43%, each steady over its rounds: which memory a process got, not which code it ran),
// ten times the cost this table is asked to resolve. In one worker the runtimes share that
// luck. Each instance is fresh (so the median over instances is not one placement's luck
// either) and warmed up, then runs `rounds` rounds of the four runtimes.
import { formatTable } from '../cli/format/table.js';
import { startNginx, type NginxOptions } from '../scripts/nginx-instance.js';
import { benchHttp, callsFor, medianOf, runOne, type Result, type Way } from './ffi-run.js';

// Four runtimes of the echo library with one poller each, under four keys ("1", "01", "001"
// and "0001" parse alike): two instrumented, two opted out. A runtime keeps its luck for its
// life (where its poller runs, where its memory lies): in one worker, three runtimes of one
// kind read up to 10% apart over ten rounds. So the cost compares two against two, and the
// A/A control two mixed pairs (one of each kind in each, so the instrumentation cancels):
// with one opted-out runtime against the mean of two instrumented, a slow runtime moved the
// cost by its whole luck two times in three and the A/A by half of it, and the cost read
// above the A/A wherever the rows were noisy. Which key plays which part rotates from instance
// to instance, and the order of the four goes through a balanced Latin square (each runtime
// in each place once, each after each other once) from round to round and, for the start,
// from instance to instance: with the parts and the order fixed, a worker's first-started
// runtime read ~1% slower pinned at 32 coroutines, and unpinned at one coroutine the A/A read
// 3-6%.
const KEYS = ['1', '01', '001', '0001'] as const;
const ORDERS = [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]] as const;
const INSTRUMENTED = [true, true, false, false] as const;
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
      // instance k: which key plays which part (instrumented, instrumented, not, not)
      const ways = INSTRUMENTED.map((inst, part) => way(KEYS[(k + part) % KEYS.length]!, inst));
      let row = 0;
      for (const size of run.sizes) {
        for (const conc of run.concs) {
          const go = async (i: number) => {
            const w = ways[i]!;
            const r = await runOne(n, w, size, conc, run.uds, undefined, callsFor(size, conc) * run.lengthen);
            checkRecorded(r, INSTRUMENTED[i]!, w.label);
            return r;
          };
          // warm-up: the runtimes started (in the first row, in an order that goes round the
          // square over the instances: which poller starts first may decide where it runs),
          // the worker's traces compiled, its buffers grown
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
  const title = `instrumentation: ${run.instances} fresh instances × ${run.rounds} rounds; in each worker two instrumented`
    + ' runtimes against two that opted out (means of two), and two mixed pairs against each other (A/A: the noise floor);'
    + ' each cell the median over instances (min..max) of each one\'s median over rounds';
  return `${title}\n${formatTable(['bytes', 'conc', 'calls/s inst', 'calls/s noinst',
    'cost: calls/s', 'A/A: calls/s', 'cost: cpu/call', 'A/A: cpu/call'], rows)}\n`;
}
