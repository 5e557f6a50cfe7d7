// The workers: pid, id, user, versions, JIT state and breakpoint mode (watching, or which hook
// and why; Agent.getStats). follow() keeps them current between refreshes: workers attach and
// detach, and an `armed` event carries the mode its worker takes a breakpoint in.
import type { Disposer, ProbeClient, WorkerResult } from '../client/client.js';
import type { Agent, Debugger, Target } from '../probe/protocol-types.js';
import { View } from './view.js';

/** A breakpoint mode for output: the agent's own, or `unknown` and why. `reason` is there
 * whenever mode is not `watching` (when the agent gave one). */
export interface ModeView {
  mode: Debugger.BreakpointMode['mode'] | 'unknown';
  reason?: string;
}

export interface WorkerInfo {
  pid: number;
  worker_id: number | null;
  user: string | null;
  versions: Agent.Versions | null;
  jit: Agent.JitState | null;
  breakpoint_mode: ModeView;
  error?: string;
}

export const UNREPORTED = 'the agent does not report it';

const MODES = new Set<string>(['watching', 'call hook', 'line hook', 'lua hook'] satisfies Debugger.BreakpointMode['mode'][]);

/** The agent's mode object as given, when it is one; else `unknown` with `why` (a mode this
 * CLI does not know is named in the reason, so scripts only ever see the documented words). */
export function readMode(raw: unknown, why = UNREPORTED): ModeView {
  const m = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : undefined;
  if (!m || typeof m.mode !== 'string' || m.mode === '') return { mode: 'unknown', reason: why };
  if (!MODES.has(m.mode)) return { mode: 'unknown', reason: `the agent reported mode ${JSON.stringify(m.mode)}` };
  const view: ModeView = { mode: m.mode as ModeView['mode'] };
  if (typeof m.reason === 'string' && m.reason !== '') view.reason = m.reason;
  return view;
}

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

export class WorkersView extends View<WorkerInfo[]> {
  constructor(private readonly client: ProbeClient) {
    super([]);
  }

  /** Every worker, with the mode its Agent.getStats reports. */
  async refresh(): Promise<WorkerInfo[]> {
    const stats = await this.client.callAll('Agent.getStats');
    const targets = await this.client.targets();
    return this.publish(targets.map((t) => workerInfo(t, stats.find((r) => r.pid === t.pid))));
  }

  /** Keep the list current: attached workers come in (their mode known at their first armed
   * breakpoint or the next refresh), detached ones say why; armed events update the mode. */
  follow(): Disposer {
    const offTarget = this.client.onTarget((e) => {
      const pid = e.event === 'attached' ? e.target.pid : e.pid;
      const next: WorkerInfo = e.event === 'attached'
        ? { ...workerInfo(e.target), breakpoint_mode: { mode: 'unknown', reason: 'not asked yet' } }
        : {
          ...(this.state.find((w) => w.pid === pid) ?? workerInfo({ pid, attached: false })),
          breakpoint_mode: { mode: 'unknown', reason: `not attached: ${e.reason}` },
          error: e.reason,
        };
      this.publish([...this.state.filter((w) => w.pid !== pid), next].sort((a, b) => a.pid - b.pid));
    });
    const offArmed = this.client.onBreakpoint((e) => {
      if (e.event !== 'armed' || !e.mode) return;
      const mode = readMode(e.mode);
      if (!this.state.some((w) => w.pid === e.pid && (w.breakpoint_mode.mode !== mode.mode || w.breakpoint_mode.reason !== mode.reason))) return;
      this.publish(this.state.map((w) => (w.pid === e.pid ? { ...w, breakpoint_mode: mode } : w)));
    });
    const off = (): void => {
      offTarget();
      offArmed();
    };
    this.hold(off);
    return off;
  }
}
