// The desired breakpoints of one session. Ids are chosen here and are the same on every worker;
// each breakpoint is set on every attached worker and on every worker that attaches later (the
// new workers of a master after `nginx -s reload`). Per-worker state (armed/pending/disabled,
// hits, drops) is kept from the agents' answers and events, and the agents' Debugger events are
// relayed to listeners with the worker pid. --count is a total across workers and --timeout a
// deadline for the whole breakpoint: both are enforced here, so a worker that joins late gets
// what is left of them. Set, remove and re-apply go through one promise chain.
import { debuglog } from 'node:util';
import { AgentError, ProbeError } from './errors.js';
import type { Commands, Debugger, Events, Lua, Target } from './protocol-types.js';
import { mayBeOriginal, SourceMaps, type Resolution } from './source-maps.js';

const trace = debuglog('nffi');

export const DEFAULT_TIMEOUT_MS = 600_000;
/** setTimeout's limit; longer timeouts are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What Breakpoints needs of a Session (a fake one in unit tests). */
export interface BreakpointSession {
  targets(): Target.TargetInfo[];
  call<M extends keyof Commands>(pid: number, method: M, params?: Commands[M]['params']): Promise<Commands[M]['result']>;
  onTargetEvent(listener: <E extends 'Target.attachedToTarget' | 'Target.detachedFromTarget'>(method: E, params: Events[E]) => void): () => void;
  onAgentEvent(listener: (pid: number, method: string, params: unknown) => void): () => void;
  /** Once, when no worker can come back (the master or the one worker exited). */
  onEnd?(listener: (reason: string) => void): () => void;
}

/** One breakpoint on one worker. `failed`: the worker refused it; `removed`: the agent dropped it. */
export interface WorkerBreakpoint {
  pid: number;
  state: Debugger.Breakpoint['state'] | 'failed' | 'removed';
  source?: string;
  line?: number;
  moved_from?: number;
  /** With moved_from: the requested line is in no function that can still run (top level). */
  top_level?: boolean;
  /** Through a source map: the original position of source:line. */
  original?: Debugger.OriginalPosition;
  /** How the worker takes this breakpoint, as its agent says (older agents do not). */
  mode?: Debugger.BreakpointMode;
  /** Pending because FILE matched no loaded chunk: the loaded chunk names nearest to it. */
  nearest?: string[];
  /** ffi:RUNTIME.METHOD whose RUNTIME this worker has not loaded: the runtimes it has. */
  runtimes?: string[];
  hits: number;
  dropped: number;
  error?: string;
  reason?: string;
}

export interface BreakpointInfo {
  id: number;
  spec: Debugger.BreakpointSpec;
  /** Unix time (ms) the breakpoint expires. */
  expires: number;
  hits: number;
  dropped: number;
  workers: WorkerBreakpoint[];
}

/** Events for front ends: the agents' Debugger events with the pid, and `ended` when the
 * breakpoint leaves the set (deleted, count reached, timed out, removed by every agent). */
export type BreakpointEvent =
  | ({ event: 'hit' } & Debugger.HitEvent)
  | { event: 'armed'; id: number; pid: number; state: WorkerBreakpoint['state']; source?: string; line?: number; moved_from?: number; top_level?: boolean; original?: Debugger.OriginalPosition; mode?: Debugger.BreakpointMode; nearest?: string[]; runtimes?: string[] }
  | { event: 'removed'; id: number; pid: number; reason: string }
  | { event: 'error'; id: number; pid: number; message: string }
  | { event: 'dropped'; id: number; pid: number; count: number }
  | { event: 'ended'; id: number; reason: string };

export type BreakpointListener = (e: BreakpointEvent) => void;

export interface SetResult {
  id: number;
  workers: WorkerBreakpoint[];
}

interface Entry {
  id: number;
  spec: Debugger.BreakpointSpec;
  expires: number;
  hits: number;
  dropped: number;
  workers: Map<number, WorkerBreakpoint>;
  timer?: NodeJS.Timeout;
  /** FILE:LINE named an original source: the generated chunk and line armed instead. */
  target?: Resolution;
}

const ACTIVE = new Set<WorkerBreakpoint['state']>(['armed', 'pending', 'disabled']);

/** The agent's mode object, when it sent one (front ends check its fields). */
export function agentMode(raw: unknown): Debugger.BreakpointMode | undefined {
  return raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Debugger.BreakpointMode) : undefined;
}

const sameMode = (a?: Debugger.BreakpointMode, b?: Debugger.BreakpointMode): boolean =>
  a?.mode === b?.mode && a?.reason === b?.reason;

/** The agent's own words for a refusal, else the whole message. */
function reason(err: unknown): string {
  if (err instanceof AgentError && err.agentMessage) return err.agentMessage;
  return err instanceof Error ? err.message : String(err);
}

/** A refusal of the spec itself (its condition or log template), which every worker would give
 * once it has the code: the breakpoint is refused as a whole, not set on the others. */
export const specError = (message: string | undefined): boolean =>
  /^(condition|log template)(: | rejected: )/.test(message ?? '');

/** A pending breakpoint refused as its file loaded (a name its condition or template reads is not
 * visible at the line): every worker would refuse it, so it ends everywhere. */
export const armRefusal = (message: string): boolean => /^(condition|log template): unknown name /.test(message);

/** Agents say "log: ..." when a template fails at a hit; front ends say what it is. */
const labelled = (message: string): string => message.replace(/^log: /, 'log template: ');

const strings = (x: unknown): string[] | undefined =>
  Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : undefined;

export class Breakpoints {
  private readonly entries = new Map<number, Entry>();
  /** Per breakpoint and worker (`id:pid`): an armed event being announced (its source map read),
   * and the hits that came meanwhile, chained so that none is told before the armed line. */
  private readonly announcing = new Map<string, Promise<void>>();
  private readonly listeners: BreakpointListener[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  /** Source maps of the chunks breakpoints and hits name. */
  readonly maps = new SourceMaps();

  constructor(private readonly session: BreakpointSession) {
    session.onTargetEvent((method, params) => {
      if (method === 'Target.attachedToTarget') {
        const pid = (params as Target.AttachedToTargetEvent).target.pid;
        void this.serial(() => this.applyAll(pid)).catch((err) => trace('re-apply to %d: %s', pid, err));
      } else {
        const { pid, reason: why } = params as Target.DetachedFromTargetEvent;
        // Said, not only forgotten: a front end must not go on as if it were still armed there.
        for (const e of this.entries.values()) {
          const w = e.workers.get(pid);
          e.workers.delete(pid);
          if (w && ACTIVE.has(w.state)) this.emit({ event: 'removed', id: e.id, pid, reason: `worker detached: ${why ?? 'closed'}` });
        }
      }
    });
    session.onAgentEvent((pid, method, params) => this.onAgentEvent(pid, method, params));
    session.onEnd?.((why) => void this.clear(why).catch((err) => trace('end: %s', err)));
  }

  onEvent(listener: BreakpointListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Set on every attached worker. Rejects (ProbeError) when no worker accepted the spec. */
  set(spec: Debugger.BreakpointSpec): Promise<SetResult> {
    return this.serial(async () => {
      const timeout = spec.timeout_ms ?? DEFAULT_TIMEOUT_MS;
      if (!(timeout > 0)) throw new ProbeError('the timeout must be positive');
      if (spec.count !== undefined && !(spec.count > 0)) throw new ProbeError('the count must be positive');
      const e: Entry = { id: this.nextId++, spec: { ...spec, timeout_ms: timeout }, expires: Date.now() + timeout, hits: 0, dropped: 0, workers: new Map() };
      const pids = this.session.targets().filter((t) => t.attached).map((t) => t.pid);
      if (pids.length === 0) throw new ProbeError('no worker is attached');
      if (spec.line !== undefined && mayBeOriginal(spec.url)) {
        const target = await this.viaSourceMap(spec.url, spec.line, pids);
        if (target) e.target = target;
      }
      this.entries.set(e.id, e);
      // each worker as it answered: a worker whose count was reached (removed) before the others
      // answered is still told as armed first
      const results = await Promise.all(pids.map((pid) => this.applyOne(e, pid, false).then((w) => ({ ...w }))));
      const bad = results.find((w) => w.state === 'failed' && specError(w.error));
      if (bad) {
        // refused as a whole: off the workers that took it (pending ones would refuse it later)
        this.entries.delete(e.id);
        await Promise.all(results.filter((w) => w.state !== 'failed').map((w) =>
          this.session.call(w.pid, 'Debugger.removeBreakpoint', { id: e.id }).catch(() => undefined)));
        throw new ProbeError(bad.error!, 'REJECTED');
      }
      if (results.every((w) => w.state === 'failed')) {
        this.entries.delete(e.id);
        const msgs = [...new Set(results.map((w) => w.error))];
        throw new ProbeError(msgs.length === 1 ? msgs[0]! : results.map((w) => `worker ${w.pid}: ${w.error}`).join('; '), 'REJECTED');
      }
      for (const w of results) this.emitState(e, w);
      this.schedule(e);
      return { id: e.id, workers: results.map((w) => ({ ...w })) };
    });
  }

  /** Remove everywhere. Rejects when there is no such breakpoint. */
  remove(id: number, why = 'deleted'): Promise<void> {
    return this.serial(async () => {
      if (!this.entries.has(id)) throw new ProbeError(`no breakpoint ${id}`, 'NOTFOUND');
      await this.drop(id, why);
    });
  }

  /** Remove every breakpoint (a front end going away). */
  clear(why = 'deleted'): Promise<void> {
    return this.serial(async () => {
      for (const id of [...this.entries.keys()]) await this.drop(id, why);
    });
  }

  /** One breakpoint as last known (no round trip to the agents). */
  get(id: number): BreakpointInfo | undefined {
    const e = this.entries.get(id);
    return e ? this.info(e) : undefined;
  }

  /** The set, with the per-worker states refreshed from the agents when they answer. */
  async list(): Promise<BreakpointInfo[]> {
    if (this.entries.size > 0) await this.refresh();
    return [...this.entries.values()].map((e) => this.info(e));
  }

  /** A worker's view of one breakpoint, as the Debugger domain describes it. */
  static view(info: BreakpointInfo, w?: WorkerBreakpoint): Debugger.Breakpoint {
    const state = w && ACTIVE.has(w.state) ? (w.state as Debugger.Breakpoint['state']) : 'disabled';
    const b: Debugger.Breakpoint = { id: info.id, spec: info.spec, state, hits: w?.hits ?? info.hits, dropped: w?.dropped ?? info.dropped };
    const at = w ?? info.workers.find((x) => x.source);
    if (at?.source !== undefined) b.source = at.source;
    if (at?.line !== undefined) b.line = at.line;
    if (at?.original !== undefined) b.original = at.original;
    return b;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private emit(e: BreakpointEvent): void {
    for (const l of [...this.listeners]) l(e);
  }

  private emitState(e: Entry, w: WorkerBreakpoint): void {
    if (w.state === 'failed') return this.emit({ event: 'error', id: e.id, pid: w.pid, message: w.error ?? 'refused' });
    const ev: BreakpointEvent = { event: 'armed', id: e.id, pid: w.pid, state: w.state };
    if (w.source !== undefined) ev.source = w.source;
    if (w.line !== undefined) ev.line = w.line;
    if (w.moved_from !== undefined) ev.moved_from = w.moved_from;
    if (w.moved_from !== undefined && w.top_level) ev.top_level = true;
    if (w.original !== undefined) ev.original = w.original;
    if (w.mode !== undefined) ev.mode = w.mode;
    if (w.nearest !== undefined && w.state === 'pending') ev.nearest = w.nearest;
    if (w.runtimes !== undefined) ev.runtimes = w.runtimes;
    this.emit(ev);
  }

  /** What is left of count and timeout, for a worker that gets the breakpoint now. */
  private specNow(e: Entry): Debugger.BreakpointSpec {
    const spec = { ...e.spec, timeout_ms: Math.max(1, Math.round(e.expires - Date.now())) };
    if (e.target) Object.assign(spec, { url: e.target.url, line: e.target.line });
    if (e.spec.count !== undefined) spec.count = Math.max(1, e.spec.count - e.hits);
    return spec;
  }

  private async applyOne(e: Entry, pid: number, announce: boolean): Promise<WorkerBreakpoint> {
    let w: WorkerBreakpoint;
    try {
      const r = await this.session.call(pid, 'Debugger.setBreakpoint', { spec: this.specNow(e), id: e.id });
      const b = r.breakpoint;
      w = { pid, state: b?.state ?? 'armed', hits: 0, dropped: 0 };
      if (b?.source !== undefined) w.source = b.source;
      if (b?.line !== undefined) w.line = b.line;
      if (r.moved_from !== undefined) w.moved_from = r.moved_from;
      if (r.top_level === true) w.top_level = true;
      const nearest = strings(r.nearest);
      if (nearest) w.nearest = nearest;
      const runtimes = strings(r.runtimes);
      if (runtimes) w.runtimes = runtimes;
      const mode = agentMode(r.mode);
      if (mode) w.mode = mode;
      await this.withOriginal(e, w);
    } catch (err) {
      w = { pid, state: 'failed', hits: 0, dropped: 0, error: reason(err) };
    }
    // A breakpoint removed while the call was out: do not leave it on this worker.
    if (!this.entries.has(e.id)) {
      if (w.state !== 'failed') await this.session.call(pid, 'Debugger.removeBreakpoint', { id: e.id }).catch(() => undefined);
      return w;
    }
    // Hits that overtook the answer were counted already.
    const early = e.workers.get(pid);
    if (early) Object.assign(w, { hits: early.hits, dropped: early.dropped });
    e.workers.set(pid, w);
    if (announce) this.emitState(e, w);
    return w;
  }

  private async applyAll(pid: number): Promise<void> {
    for (const e of [...this.entries.values()]) {
      if (e.workers.has(pid)) continue;
      if (Date.now() >= e.expires) {
        await this.drop(e.id, 'timeout');
        continue;
      }
      await this.applyOne(e, pid, true);
    }
  }

  private schedule(e: Entry): void {
    const left = e.expires - Date.now();
    e.timer = setTimeout(() => {
      if (Date.now() < e.expires) return this.schedule(e);
      void this.serial(async () => {
        if (this.entries.get(e.id) === e) await this.drop(e.id, 'timeout');
      });
    }, Math.min(Math.max(0, left), MAX_TIMER_MS));
    e.timer.unref();
  }

  /** Take `id` out of the set and off every worker; inside the chain. */
  private async drop(id: number, why: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    if (e.timer) clearTimeout(e.timer);
    const on = [...e.workers.values()].filter((w) => ACTIVE.has(w.state));
    await Promise.all(on.map(async (w) => {
      try {
        await this.session.call(w.pid, 'Debugger.removeBreakpoint', { id });
      } catch (err) {
        trace('removeBreakpoint %d on %d: %s', id, w.pid, reason(err));
      }
      w.state = 'removed';
      w.reason = why;
      this.emit({ event: 'removed', id, pid: w.pid, reason: why });
    }));
    this.emit({ event: 'ended', id, reason: why });
  }

  private async refresh(): Promise<void> {
    const pids = this.session.targets().filter((t) => t.attached).map((t) => t.pid);
    await Promise.all(pids.map(async (pid) => {
      let got: Debugger.Breakpoint[];
      try {
        const r = await this.session.call(pid, 'Debugger.getBreakpoints', {});
        got = Array.isArray(r.breakpoints) ? r.breakpoints : [];
      } catch {
        return; // keep what the events said
      }
      for (const b of got) {
        const w = this.entries.get(b.id)?.workers.get(pid);
        if (!w || !ACTIVE.has(w.state)) continue;
        w.state = b.state;
        if (typeof b.hits === 'number') w.hits = Math.max(w.hits, b.hits);
        if (typeof b.dropped === 'number') w.dropped = Math.max(w.dropped, b.dropped);
        if (b.source !== undefined) w.source = b.source;
        if (b.line !== undefined) w.line = b.line;
      }
    }));
  }

  private info(e: Entry): BreakpointInfo {
    const workers = [...e.workers.values()].sort((a, b) => a.pid - b.pid).map((w) => ({ ...w }));
    return { id: e.id, spec: { ...e.spec }, expires: e.expires, hits: e.hits, dropped: e.dropped, workers };
  }

  /** FILE names an original source in the source map of a loaded chunk: where to arm instead.
   * Undefined when no map names it (FILE goes to the agents as it is). */
  private async viaSourceMap(url: string, line: number, pids: number[]): Promise<Resolution | undefined> {
    const scripts = new Map<string, string>();
    await Promise.all(pids.map(async (pid) => {
      try {
        const r = await this.session.call(pid, 'Debugger.getScripts', {});
        for (const s of Array.isArray(r.scripts) ? r.scripts : []) if (!scripts.has(s.source)) scripts.set(s.source, cwdOf(pid));
      } catch (err) {
        trace('getScripts on %d: %s', pid, reason(err)); // an older agent: no source maps
      }
    }));
    try {
      const list = [...scripts].map(([source, cwd]) => ({ source, cwd }));
      const r = await this.maps.resolve(url, line, list);
      if (r) trace('bp %s:%d -> %s:%d', url, line, r.url, r.line);
      return r;
    } catch (err) {
      throw new ProbeError((err as Error).message, 'REJECTED');
    }
  }

  /** Fill in w.original (and the original moved_from) from the source map of w.source. */
  private async withOriginal(e: Entry, w: WorkerBreakpoint): Promise<void> {
    if (w.source === undefined || w.line === undefined) return;
    const map = await this.maps.load(w.source, cwdOf(w.pid)).catch(() => undefined);
    const original = map?.original(w.line) ?? (e.target && w.line === e.target.line ? e.target.original : undefined);
    if (!original) return;
    w.original = original;
    if (e.target) {
      if (e.target.moved_from !== undefined) w.moved_from = e.target.moved_from;
      else if (original.line === e.spec.line) delete w.moved_from;
      else w.moved_from = e.spec.line;
    }
  }

  /** The hit with the original positions of its location and frames, where maps cover them. */
  /** The hit as the client gets it: each frame of a chunk with a source map also gives its
   * original position. The agent's params become the event (only Breakpoints reads Debugger.hit
   * events, and a flood is 1,000 a second): its frames are copied only when a map names one. */
  private hitEvent(hit: Debugger.HitEvent, id: number, pid: number): BreakpointEvent {
    const cwd = cwdOf(pid);
    const top = this.maps.original(hit.source, hit.line, cwd);
    const frames = hit.frames;
    if (Array.isArray(frames)) {
      let mapped: Lua.Frame[] | undefined;
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        const o = f.line >= 0 && typeof f.source === 'string' ? this.maps.original(f.source, f.line, cwd) : undefined;
        if (!o) continue;
        mapped ??= frames.slice();
        mapped[i] = { ...f, original: o };
      }
      if (mapped) hit.frames = mapped;
    }
    const e = hit as BreakpointEvent & Debugger.HitEvent;
    if (top) e.original = top;
    e.event = 'hit';
    e.id = id;
    e.pid = pid;
    return e;
  }

  private onAgentEvent(pid: number, method: string, params: unknown): void {
    if (!method.startsWith('Debugger.')) return;
    const p = (params ?? {}) as { id?: unknown };
    const id = method === 'Debugger.armed' ? (params as Debugger.ArmedEvent)?.breakpoint?.id : p.id;
    const e = typeof id === 'number' ? this.entries.get(id) : undefined;
    if (!e) return; // removed already, or not ours
    // The agent announces what setBreakpoint answers: the answer, still in flight, says it.
    if (method === 'Debugger.armed' && !e.workers.has(pid)) return;
    const w = e.workers.get(pid) ?? { pid, state: 'armed', hits: 0, dropped: 0 };
    e.workers.set(pid, w);
    switch (method) {
      case 'Debugger.hit': return this.inOrder(e, w, () => this.onHit(e, w, params as Debugger.HitEvent));
      case 'Debugger.armed': {
        const b = (params as Debugger.ArmedEvent).breakpoint;
        const mode = agentMode((params as Debugger.ArmedEvent).mode) ?? w.mode;
        if (w.state === b.state && w.line === b.line && w.source === b.source && sameMode(w.mode, mode)) return;
        Object.assign(w, { state: b.state }, b.source !== undefined ? { source: b.source } : {}, b.line !== undefined ? { line: b.line } : {});
        if (mode) w.mode = mode;
        // a pending breakpoint armed as its file loaded: on a moved line, said as at set time
        const moved = (params as Debugger.ArmedEvent).moved_from;
        if (b.state === 'armed' && typeof moved === 'number' && !e.target) w.moved_from = moved;
        if (b.state !== 'pending') delete w.nearest;
        return this.inOrder(e, w, () => this.withOriginal(e, w).then(() => this.emitState(e, w)));
      }
      case 'Debugger.removed': {
        const why = String((params as Debugger.RemovedEvent).reason ?? 'removed');
        w.state = 'removed';
        w.reason = why;
        this.emit({ event: 'removed', id: e.id, pid, reason: why });
        // Every agent let go on its own (its timeout, or errors): the breakpoint is over.
        if (why !== 'detach' && ![...e.workers.values()].some((x) => ACTIVE.has(x.state))) {
          void this.serial(() => this.drop(e.id, why));
        }
        return;
      }
      case 'Debugger.error': {
        const message = labelled(String((params as Debugger.ErrorEvent).message ?? 'error'));
        w.error = message;
        this.emit({ event: 'error', id: e.id, pid, message });
        if (armRefusal(message)) void this.serial(async () => {
          if (this.entries.get(e.id) === e) await this.drop(e.id, 'error');
        });
        return;
      }
      case 'Debugger.dropped': {
        const count = Number((params as Debugger.DroppedEvent).count) || 0;
        w.dropped += count;
        e.dropped += count;
        return this.emit({ event: 'dropped', id: e.id, pid, count });
      }
      default:
        return;
    }
  }

  /** Run `fn` now, or after what worker w of e is still announcing (then it is next in line). */
  private inOrder(e: Entry, w: WorkerBreakpoint, fn: () => void | Promise<void>): void {
    const key = `${e.id}:${w.pid}`;
    const before = this.announcing.get(key);
    const run = before ? before.then(fn) : fn();
    if (!run) return;
    const done: Promise<void> = run.catch((err) => trace('bp %d on %d: %s', e.id, w.pid, err)).finally(() => {
      if (this.announcing.get(key) === done) this.announcing.delete(key);
    });
    this.announcing.set(key, done);
  }

  private onHit(e: Entry, w: WorkerBreakpoint, hit: Debugger.HitEvent): void {
    if (this.entries.get(e.id) !== e) return; // removed while its armed line was told
    const count = e.spec.count;
    if (count !== undefined && e.hits >= count) return; // in flight when the count was reached
    e.hits++;
    w.hits++;
    this.emit(this.hitEvent(hit, e.id, w.pid));
    if (count !== undefined && e.hits >= count) {
      void this.serial(async () => {
        if (this.entries.get(e.id) === e) await this.drop(e.id, 'count');
      });
    }
  }
}

/** Where a worker's relative chunk names (a relative lua_package_path) are rooted. */
function cwdOf(pid: number): string {
  return `/proc/${pid}/cwd`;
}
