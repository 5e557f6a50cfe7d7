// Where the queue monitor's cells turn yellow and red: queue depth (tasks waiting) and p99
// latencies; a task's age is held against the same latency limits. Set by `attach
// --warn-depth N --bad-depth N --warn-p99 DUR --bad-p99 DUR`, changed live with [ ] { } in the
// queue pane or `:threshold`, and spelled out in the help screen's legend.
import { fmtDuration } from './format.js';
import { level, type Level, type Thresholds } from './style.js';
import type { LegendEntry } from './widgets/help.js';

export interface QueueThresholds {
  warnDepth: number;
  badDepth: number;
  /** ms */
  warnP99: number;
  /** ms */
  badP99: number;
}

export const DEFAULT_THRESHOLDS: QueueThresholds = { warnDepth: 100, badDepth: 1000, warnP99: 10, badP99: 100 };

/** The thresholds with `over` applied; a warn above its bad is raised to meet it (the user
 * asked for the bad one explicitly, or for a warn past the default bad). */
export function thresholds(over: Partial<QueueThresholds> = {}): QueueThresholds {
  const t = { ...DEFAULT_THRESHOLDS };
  for (const [k, v] of Object.entries(over) as [keyof QueueThresholds, number | undefined][]) {
    if (v !== undefined && Number.isFinite(v) && v >= 0) t[k] = v;
  }
  if (over.badDepth === undefined && t.warnDepth > t.badDepth) t.badDepth = t.warnDepth;
  if (over.badP99 === undefined && t.warnP99 > t.badP99) t.badP99 = t.warnP99;
  if (t.warnDepth > t.badDepth) t.warnDepth = t.badDepth;
  if (t.warnP99 > t.badP99) t.warnP99 = t.badP99;
  return t;
}

export const depthLimits = (t: QueueThresholds): Thresholds => ({ warn: t.warnDepth, bad: t.badDepth });
export const latencyLimits = (t: QueueThresholds): Thresholds => ({ warn: t.warnP99, bad: t.badP99 });

/** Depth against the thresholds; a full queue (depth at max_queue) is bad whatever they say. */
export function depthLevel(depth: number, max: number | undefined, t: QueueThresholds): Level {
  if (max !== undefined && max > 0 && depth >= max) return 'bad';
  return level(depth, depthLimits(t));
}

export const latencyLevel = (ms: number, t: QueueThresholds): Level => level(ms, latencyLimits(t));

/** Both depth thresholds (or both latency ones) times `factor`, at least 1 task / 1 µs. */
export function scaled(t: QueueThresholds, which: 'depth' | 'p99', factor: number): QueueThresholds {
  if (which === 'depth') {
    return { ...t, warnDepth: Math.max(1, Math.round(t.warnDepth * factor)), badDepth: Math.max(1, Math.round(t.badDepth * factor)) };
  }
  return { ...t, warnP99: Math.max(0.001, t.warnP99 * factor), badP99: Math.max(0.001, t.badP99 * factor) };
}

export function describe(t: QueueThresholds, unicode = true): string {
  const d = (ms: number) => fmtDuration(ms, { unicode });
  return `depth warn ${t.warnDepth} bad ${t.badDepth}, p99 warn ${d(t.warnP99)} bad ${d(t.badP99)}`;
}

/** The help screen's colour legend for these thresholds. */
export function legend(t: QueueThresholds, unicode = true): LegendEntry[] {
  const d = (ms: number) => fmtDuration(ms, { unicode });
  const ge = unicode ? '≥' : '>=';
  return [
    { role: 'ok', sample: 'ok', meaning: `depth < ${t.warnDepth}, p99 and task age < ${d(t.warnP99)}` },
    { role: 'warn', sample: 'warn', meaning: `depth ${ge} ${t.warnDepth}, p99 or task age ${ge} ${d(t.warnP99)}` },
    { role: 'bad', sample: 'bad', meaning: `depth ${ge} ${t.badDepth} or full, p99/age ${ge} ${d(t.badP99)}, tmo/rej rising` },
    { role: 'new', sample: 'new', meaning: 'a row or a worker that just appeared' },
    { role: 'selected', sample: '>selected', meaning: 'the selected row of the focused pane' },
    { role: 'dim', sample: 'dim', meaning: 'dead coroutine, worker gone, no data' },
  ];
}
