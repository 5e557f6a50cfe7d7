// Breakpoint events on serve's WebSockets, in the Debugger domain's shapes plus the worker
// `pid` (the descriptor's events name the worker only in `hit`): `armed` carries the
// Breakpoint as that worker sees it; `removed` without a pid means the breakpoint left the
// probe's set (what `ended` is in-process). toWire and fromWire are inverses.
import { agentMode, Breakpoints, type BreakpointEvent, type BreakpointInfo } from './breakpoints.js';
import type { Debugger } from './protocol-types.js';

export interface WireEvent {
  method: string;
  params: Record<string, unknown>;
}

/** The wire form of `e`; `info` (the breakpoint, when still in the set) completes `armed`. */
export function toWire(e: BreakpointEvent, info?: BreakpointInfo): WireEvent {
  const { event, ...rest } = e;
  switch (e.event) {
    case 'armed': {
      const w = { pid: e.pid, state: e.state, source: e.source, line: e.line, original: e.original, hits: 0, dropped: 0 };
      const base: BreakpointInfo = info ?? { id: e.id, spec: { url: e.source ?? '?', line: e.line ?? 0 }, expires: 0, hits: 0, dropped: 0, workers: [] };
      const known = info?.workers.find((x) => x.pid === e.pid);
      const breakpoint = Breakpoints.view(base, known ? { ...known, ...w, hits: known.hits, dropped: known.dropped } : w);
      const params: Record<string, unknown> = { breakpoint, pid: e.pid };
      if (e.moved_from !== undefined) params.moved_from = e.moved_from;
      if (e.top_level) params.top_level = true;
      if (e.mode !== undefined) params.mode = e.mode;
      if (e.nearest !== undefined) params.nearest = e.nearest;
      if (e.runtimes !== undefined) params.runtimes = e.runtimes;
      return { method: 'Debugger.armed', params };
    }
    case 'ended':
      return { method: 'Debugger.removed', params: { id: e.id, reason: e.reason } };
    default:
      return { method: `Debugger.${event}`, params: rest };
  }
}

const names = (x: unknown): string[] | undefined =>
  Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : undefined;

/** The event a front end gets back from a wire message (undefined: not a breakpoint event). */
export function fromWire(method: string, params: unknown): BreakpointEvent | undefined {
  const p = (params ?? {}) as Record<string, unknown>;
  switch (method) {
    case 'Debugger.hit':
      return { ...(p as unknown as Debugger.HitEvent), event: 'hit' };
    case 'Debugger.armed': {
      const b = (p.breakpoint ?? {}) as Debugger.Breakpoint;
      const e: BreakpointEvent = { event: 'armed', id: b.id, pid: Number(p.pid), state: b.state };
      if (b.source !== undefined) e.source = b.source;
      if (b.line !== undefined) e.line = b.line;
      if (b.original !== undefined) e.original = b.original;
      if (typeof p.moved_from === 'number') e.moved_from = p.moved_from;
      if (p.top_level === true) e.top_level = true;
      const mode = agentMode(p.mode);
      if (mode) e.mode = mode;
      const nearest = names(p.nearest);
      if (nearest) e.nearest = nearest;
      const runtimes = names(p.runtimes);
      if (runtimes) e.runtimes = runtimes;
      return e;
    }
    case 'Debugger.removed':
      return typeof p.pid === 'number'
        ? { event: 'removed', id: Number(p.id), pid: p.pid, reason: String(p.reason) }
        : { event: 'ended', id: Number(p.id), reason: String(p.reason) };
    case 'Debugger.error':
      return { event: 'error', id: Number(p.id), pid: Number(p.pid), message: String(p.message) };
    case 'Debugger.dropped':
      return { event: 'dropped', id: Number(p.id), pid: Number(p.pid), count: Number(p.count) };
    default:
      return undefined;
  }
}

/** A breakpoint over every worker: the Debugger.Breakpoint (as its first armed worker sees it,
 * with the totals) plus the per-worker states. The browser socket and /json/breakpoints use it. */
export function overall(info: BreakpointInfo): Debugger.Breakpoint & { workers: BreakpointInfo['workers'] } {
  const first = info.workers.find((w) => w.state === 'armed') ?? info.workers.find((w) => w.state !== 'failed');
  return { ...Breakpoints.view(info, first && { ...first, hits: info.hits, dropped: info.dropped }), workers: info.workers };
}
