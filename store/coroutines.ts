// Every coroutine of every worker, one row each: kind, state, what it waits on, its request,
// its top frames (Lua.getCoroutines), and which of them is the application's (frames.ts).
// Workers by pid, coroutines by id. Filters and the summary a list of thousands needs.
import type { ProbeClient } from '../client/client.js';
import type { Lua } from '../probe/protocol-types.js';
import { defaultFrameRule, framesToAsk, shownFrameIndex, userFrameIndex, type FrameRule } from './frames.js';
import { list, View } from './view.js';

/** A frame as the views keep it; `linedefined` when the agent sends it. */
export interface FrameBrief { function: string; source: string; line: number; linedefined?: number }

export interface CoroutineRow {
  id: number;
  kind: string;
  state: string;
  wait: Lua.Wait | null;
  frames: FrameBrief[];
  request: Lua.Request | null;
  /** The first frame in application code (store/frames.ts), null when none listed is. */
  top_frame_index: number | null;
}

/** truncated: the agent listed fewer than it holds (its answer said so). hidden: rows left out
 * by a filter, by what they are (CoroutineFilter). */
export interface WorkerCoroutines {
  pid: number;
  coroutines: CoroutineRow[];
  error?: string;
  truncated?: boolean;
  hidden?: HiddenCounts;
  /** Built on the worker's previous answer (refreshWorkers): rows not taken over from it, the
   * others are the same objects. Absent: every row is new. */
  newRows?: number;
}

export const brief = (f: FrameBrief): FrameBrief => ({
  function: f.function, source: f.source, line: f.line,
  ...(typeof f.linedefined === 'number' ? { linedefined: f.linedefined } : {}),
});

export function coroutineRow(c: Lua.Coroutine, rule: FrameRule = defaultFrameRule()): CoroutineRow {
  const frames = list<Lua.Frame>(c.frames);
  const user = userFrameIndex(frames, rule);
  return {
    id: c.id,
    kind: c.kind,
    state: c.state,
    wait: c.wait ?? null,
    frames: frames.map(brief),
    request: c.request ?? null,
    top_frame_index: user >= 0 ? user : null,
  };
}

/** A timer that has not fired yet (or an ngx.on_abort handler not run): anchored, suspended,
 * no frame (when frames were asked for). */
export const isNotStarted = (c: CoroutineRow): boolean =>
  c.state === 'suspended' && c.frames.length === 0 && (c.kind === 'timer' || c.kind === 'thread');

/** A light thread that has finished, kept by lua-nginx-module for reuse. */
export const isDead = (c: CoroutineRow): boolean => c.state === 'dead';

/** The state as people read it: a timer not fired yet is `pending`, another coroutine that
 * never ran `not started`. */
export function stateText(c: CoroutineRow): string {
  if (isNotStarted(c)) return c.kind === 'timer' ? 'pending' : 'not started';
  return c.state;
}

export interface HiddenCounts { not_started: number; dead: number; filtered: number }

export interface CoroutineFilter {
  kinds?: string[];
  /** Matched against the state and stateText (pending, not started). */
  states?: string[];
  /** Wait kinds (ffi, ngx.sleep, cosocket, semaphore, …); `none` for no wait. */
  waits?: string[];
  /** Text in `METHOD URI` of the request, case-insensitive. */
  request?: string;
  /** Show pending timers, unstarted and dead coroutines (hidden otherwise). */
  all?: boolean;
}

function matches(c: CoroutineRow, f: CoroutineFilter): boolean {
  if (f.kinds?.length && !f.kinds.includes(c.kind)) return false;
  if (f.states?.length && !f.states.includes(c.state) && !f.states.includes(stateText(c))) return false;
  if (f.waits?.length && !f.waits.includes(c.wait?.kind ?? 'none')) return false;
  if (f.request !== undefined) {
    const text = c.request ? `${c.request.method} ${c.request.uri}` : '';
    if (!text.toLowerCase().includes(f.request.toLowerCase())) return false;
  }
  return true;
}

/** The rows `f` keeps, and per worker how many were hidden and why. A state filter that names
 * `dead` or `pending` shows those without --all. */
export function filterCoroutines(workers: WorkerCoroutines[], f: CoroutineFilter = {}): WorkerCoroutines[] {
  const asked = new Set(f.states ?? []);
  return workers.map((w) => {
    const hidden: HiddenCounts = { not_started: 0, dead: 0, filtered: 0 };
    const kept = w.coroutines.filter((c) => {
      if (!f.all && isNotStarted(c) && !asked.has(stateText(c)) && !asked.has(c.state)) return hidden.not_started++, false;
      if (!f.all && isDead(c) && !asked.has('dead')) return hidden.dead++, false;
      if (!matches(c, f)) return hidden.filtered++, false;
      return true;
    });
    return { ...w, coroutines: kept, hidden };
  });
}

export interface CoroutineSummary {
  total: number;
  kinds: Record<string, number>;
  states: Record<string, number>;
  waits: Record<string, number>;
  hidden: HiddenCounts;
}

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

/** Counts per kind, state (as stateText) and wait kind over the rows shown, and what was hidden. */
export function summarize(workers: WorkerCoroutines[]): CoroutineSummary {
  const s: CoroutineSummary = { total: 0, kinds: {}, states: {}, waits: {}, hidden: { not_started: 0, dead: 0, filtered: 0 } };
  for (const w of workers) {
    for (const c of w.coroutines) {
      s.total++;
      bump(s.kinds, c.kind);
      bump(s.states, stateText(c));
      if (c.wait) bump(s.waits, c.wait.kind);
    }
    if (w.hidden) for (const k of ['not_started', 'dead', 'filtered'] as const) s.hidden[k] += w.hidden[k];
  }
  return s;
}

const byId = (a: CoroutineRow, b: CoroutineRow): number => a.id - b.id;

export interface RefreshOptions {
  rule?: FrameRule;
  /** `frames` counts from the shown frame (the application's) instead of the top: more are
   * asked for and the ones below shown + frames are dropped. */
  fromUser?: boolean;
}

/** A worker's last answer and the agent's epoch for it (the `since` of the next walk). */
interface Base { epoch: number; answer: WorkerCoroutines }

/** `prev`'s rows with those `gone` or listed again in `changed` replaced: unchanged rows stay
 * the same objects (the views keep what they built for them). */
function applyDelta(prev: CoroutineRow[], changed: CoroutineRow[], gone: number[]): CoroutineRow[] {
  if (changed.length === 0 && gone.length === 0) return prev;
  const drop = new Set(gone);
  for (const c of changed) drop.add(c.id);
  const rows = prev.filter((c) => !drop.has(c.id));
  for (const c of changed) rows.push(c);
  return rows.sort(byId);
}

export class CoroutinesView extends View<WorkerCoroutines[]> {
  /** Per worker, the answer later walks are deltas over (refreshWorkers). */
  private bases = new Map<number, Base>();

  constructor(private readonly client: ProbeClient) {
    super([]);
  }

  /** Ask every worker; `frames`: top frames per coroutine (from the application's with
   * fromUser). Workers by pid, coroutines by id. */
  async refresh(frames: number, opts: RefreshOptions = {}): Promise<WorkerCoroutines[]> {
    const rule = opts.rule ?? defaultFrameRule();
    const ask = opts.fromUser ? framesToAsk(frames, rule) : frames;
    const results = await this.client.callAll('Lua.getCoroutines', { frames: ask });
    const rows = (r: Lua.GetCoroutinesResult | undefined): CoroutineRow[] => list<Lua.Coroutine>(r?.coroutines)
      .map((c) => coroutineRow(c, rule))
      .map((c) => (opts.fromUser ? trimFrames(c, frames, rule) : c))
      .sort(byId);
    return this.publish(results.map((r) => ({
      pid: r.pid,
      coroutines: rows(r.result),
      ...(r.result?.truncated ? { truncated: true } : {}),
      ...(r.error ? { error: r.error } : {}),
    })).sort((a, b) => a.pid - b.pid));
  }

  /**
   * Ask only workers `pids`, one request each; the others keep their last answer and workers not
   * in `alive` leave the state. A front end that samples often asks a few workers per tick this
   * way instead of walking every coroutine of every worker each time.
   */
  async refreshWorkers(pids: number[], frames: number, alive: number[] = pids, rule?: FrameRule): Promise<WorkerCoroutines[]> {
    // with a rule, the agent starts each coroutine's frames at its application code (skip):
    // one frame says where it is, instead of the C function and plumbing above it
    const params: Lua.GetCoroutinesParams = rule && !rule.allFrames ? { frames, skip: rule.patterns.join(',') } : { frames };
    const got = await Promise.all(pids.map((pid) => this.walk(pid, params)));
    const keep = new Set(alive);
    for (const pid of this.bases.keys()) if (!keep.has(pid)) this.bases.delete(pid);
    const next = new Map(this.state.filter((w) => keep.has(w.pid)).map((w) => [w.pid, w]));
    for (const w of got) if (keep.has(w.pid)) next.set(w.pid, w);
    return this.publish([...next.values()].sort((a, b) => a.pid - b.pid));
  }

  /**
   * One worker's coroutines, asked as a delta over its last answer (`since`): the agent leaves
   * out those unchanged, so a sampler walking 10,000 waiting coroutines twice a second parses
   * and builds only the few that moved. An answer over a base this view no longer holds is
   * refused and the next walk asks for everything.
   */
  private async walk(pid: number, params: Lua.GetCoroutinesParams): Promise<WorkerCoroutines> {
    const held = this.bases.get(pid);
    this.bases.delete(pid);
    try {
      const r = await this.client.call(pid, 'Lua.getCoroutines', { ...params, since: held?.epoch ?? 0 });
      const rows = list<Lua.Coroutine>(r?.coroutines).map((c) => coroutineRow(c));
      let answer: WorkerCoroutines;
      if (r?.base !== undefined) {
        if (!held || held.epoch !== r.base) throw new Error(`answer built on walk ${r.base}, not on the one held`);
        answer = { pid, coroutines: applyDelta(held.answer.coroutines, rows, list<number>(r.gone)), newRows: rows.length };
      } else {
        answer = { pid, coroutines: rows.sort(byId) };
      }
      if (r?.truncated) answer.truncated = true;
      if (typeof r?.epoch === 'number') this.bases.set(pid, { epoch: r.epoch, answer });
      return answer;
    } catch (err) {
      return { pid, coroutines: [], error: (err as Error).message };
    }
  }
}

/** The frames down to `n` below the shown one (those above it stay: --json keeps the path). */
export function trimFrames(c: CoroutineRow, n: number, rule: FrameRule = defaultFrameRule()): CoroutineRow {
  const shown = shownFrameIndex(c.frames, rule);
  const keep = Math.max(0, shown) + n;
  return c.frames.length <= keep ? c : { ...c, frames: c.frames.slice(0, keep) };
}
