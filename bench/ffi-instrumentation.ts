// What instrumentation costs, measured apart from the main table. There, one instance runs
// every way in turn and an uninstrumented one beside it runs a single way, so a comparison of
// the two would also measure what the other ways leave behind (their runtimes' pollers, the
// thread pool, a different heap). Here each pair is two fresh instances that differ only in
// libnffi's build, and run the same calls in the same order, which of the two goes first
// alternating. Fresh pairs also give each pair its own CPU placement, so the median over
// pairs is not one placement's luck.
import { formatTable } from '../cli/format/table.js';
import { startNginx, type NginxInstance, type NginxOptions } from '../scripts/nginx-instance.js';
import { benchHttp, medianOf, runOne, type Result, type Way } from './ffi-run.js';

const NFFI: Way = { label: 'nffi', mode: 'nffi' };

export interface InstrumentationRun {
  nginx: Omit<NginxOptions, 'http'>;
  uds: string;
  sizes: number[];
  concs: number[];
  pairs: number;
  /** Both instances uninstrumented: what two identical builds read as (the noise floor). */
  aa: boolean;
}

interface Pair { inst: Result; noinst: Result }

function pct(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${medianOf(s).toFixed(1)}% (${s[0]!.toFixed(1)}..${s[s.length - 1]!.toFixed(1)})`;
}

// A run that says it was instrumented must have recorded latencies, and one that was not
// must not: otherwise the pair compared something other than the instrumentation.
function checkRecorded(r: Result, instrumented: boolean): void {
  if (instrumented && !r.lat_us) throw new Error('instrumented run recorded no latencies: the instrumentation did not run');
  if (!instrumented && r.lat_us) throw new Error('uninstrumented run recorded latencies');
}

export async function instrumentationTable(run: InstrumentationRun): Promise<string> {
  const pairs = new Map<string, Pair[]>();
  const instrumented = !run.aa;
  for (let k = 0; k < run.pairs; k++) {
    let a: NginxInstance | undefined;
    let b: NginxInstance | undefined;
    try {
      a = await startNginx({ ...run.nginx, http: benchHttp(!instrumented) });
      b = await startNginx({ ...run.nginx, http: benchHttp(true) });
      let row = 0;
      for (const size of run.sizes) {
        for (const conc of run.concs) {
          const first = (k + row++) % 2 === 0;
          const go = async (n: NginxInstance, inst: boolean) => {
            const r = await runOne(n, NFFI, size, conc, run.uds, inst);
            checkRecorded(r, inst);
            return r;
          };
          let inst: Result, noinst: Result;
          if (first) { inst = await go(a, instrumented); noinst = await go(b, false); }
          else { noinst = await go(b, false); inst = await go(a, instrumented); }
          const key = `${size}/${conc}`;
          pairs.set(key, [...(pairs.get(key) ?? []), { inst, noinst }]);
        }
      }
    } finally {
      await a?.stop();
      await b?.stop();
    }
  }
  const rows: string[][] = [];
  for (const size of run.sizes) {
    for (const conc of run.concs) {
      const ps = pairs.get(`${size}/${conc}`)!;
      rows.push([
        String(size), String(conc),
        medianOf(ps.map((p) => p.inst.ops_per_s)).toFixed(0),
        medianOf(ps.map((p) => p.noinst.ops_per_s)).toFixed(0),
        pct(ps.map((p) => (1 - p.inst.ops_per_s / p.noinst.ops_per_s) * 100)),
        pct(ps.map((p) => (p.inst.cpu_us_per_call / p.noinst.cpu_us_per_call - 1) * 100)),
      ]);
    }
  }
  const title = `instrumentation: ${run.pairs} pairs of fresh instances, instrumented libnffi against libnffi_noinst`
    + (run.aa ? ' [BENCH_INST_AA: both uninstrumented, an A/A control]' : '')
    + '; cost = median over pairs (min..max)';
  return `${title}\n${formatTable(['bytes', 'conc', 'calls/s inst', 'calls/s noinst', 'cost: calls/s', 'cost: cpu/call'], rows)}\n`;
}
