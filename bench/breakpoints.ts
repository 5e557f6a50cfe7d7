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
//
// In parts: breakpoints-worker.ts (the fixture, the worker, the checks), breakpoints-rps.ts
// (req/s per configuration), breakpoints-hits.ts (a kept and a dropped hit); the heap walk
// and the run are here.
import { loadavg } from 'node:os';
import { Breakpoints } from '../probe/breakpoints.js';
import { Session } from '../probe/session.js';
import { startNginx } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';
import {
  BENCH_LUA, check, failed, failures, HANDLERS, HIT_CALLS, HIT_REQUESTS, HOT_ROUNDS, HTTP, lineOf, modeText,
  ROUNDS, SECONDS, Worker, type Handler,
} from './breakpoints-worker.js';
import { reqPerSec, reqPerSecTable, type Column } from './breakpoints-rps.js';
import { hitCostTable, hotLineTable } from './breakpoints-hits.js';

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
