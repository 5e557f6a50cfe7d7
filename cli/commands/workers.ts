// `nffi-inspect workers PID [--json]`: the attached workers, their agent's versions, JIT state
// and breakpoint mode (watching, or which hook and why; Agent.getStats).
import type { Command } from 'commander';
import type { Agent, Target } from '../../probe/protocol-types.js';
import type { WorkerResult } from '../../probe/session.js';
import { writeTerm } from '../format/escape.js';
import { formatWorkers, readMode, UNREPORTED, type ModeView, type WorkerInfo } from '../format/workers.js';
import { parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

/** The mode from a worker's Agent.getStats answer, or `unknown` and why. */
export function workerMode(t: Target.TargetInfo, stats: WorkerResult<Agent.GetStatsResult> | undefined): ModeView {
  if (!t.attached) return { mode: 'unknown', reason: `not attached${t.error ? `: ${t.error}` : ''}` };
  if (!stats || stats.error !== undefined) return { mode: 'unknown', reason: `Agent.getStats failed: ${stats?.error ?? 'no answer'}` };
  const bps: unknown = stats.result?.breakpoints;
  const agent = t.versions?.agent;
  const raw = bps && typeof bps === 'object' ? (bps as { mode?: unknown }).mode : undefined;
  return readMode(raw, agent ? `agent ${agent} does not report it` : UNREPORTED);
}

export function workerInfo(t: Target.TargetInfo, stats?: WorkerResult<Agent.GetStatsResult>): WorkerInfo {
  return {
    pid: t.pid, worker_id: t.worker_id ?? null, user: t.user ?? null,
    versions: t.versions ?? null, jit: t.jit ?? null, breakpoint_mode: workerMode(t, stats),
    ...(t.error ? { error: t.error } : {}),
  };
}

export function registerWorkers(program: Command): void {
  withProbeOptions(program
    .command('workers')
    .description('list the workers of a master (or one worker): id, user, versions, JIT state, breakpoint mode')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: ProbeOptions) => {
      const workers = await withSession(parsePid(pidText), opts, async (s) => {
        const stats = await s.callAll('Agent.getStats');
        return s.targets().map((t) => workerInfo(t, stats.find((r) => r.pid === t.pid)));
      });
      if (opts.json) printJson({ workers });
      else writeTerm(formatWorkers(workers) + '\n');
    });
}
