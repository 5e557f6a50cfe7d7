// Which workers of a pid a breakpoint did not reach, and why: read from /proc (the workers a
// master serves now) and, for one never attached, from who holds it (probe/holders.ts). Both
// clients answer setBreakpoint with it, so a front end never has to look at the host itself.
import type { WorkerBreakpoint } from '../probe/breakpoints.js';
import { whyNotReached } from '../probe/holders.js';
import { readNginxProc, workersOf } from '../probe/procs.js';
import { runDirsOf } from '../probe/run-dir.js';
import type { Unreached } from './client.js';

/** The workers of `pid` (a master: all of its serving workers) the breakpoint is not on: not
 * attached at all (with why), or refused (their error event says why). */
export function unreached(pid: number, workers: WorkerBreakpoint[], runDir?: string): Unreached[] {
  const proc = readNginxProc(pid);
  const expected = proc?.role === 'master' ? workersOf(pid) : [proc ?? { pid, uid: undefined }];
  const seen = new Map(workers.map((w) => [w.pid, w]));
  const out: Unreached[] = [];
  for (const p of expected.sort((a, b) => a.pid - b.pid)) {
    const w = seen.get(p.pid);
    const dirs = p.uid === undefined ? (runDir ? [runDir] : []) : runDirsOf(p.uid, runDir);
    if (!w) out.push({ pid: p.pid, why: whyNotReached(p.pid, dirs) });
    else if (w.state === 'failed') out.push({ pid: p.pid });
  }
  return out;
}
