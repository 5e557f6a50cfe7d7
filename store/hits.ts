// The breakpoint stream: every breakpoint the client reports (per worker: state, hits, drops),
// its end, and the latest events in a bounded list. A front end that sets a breakpoint follows
// it by id from the moment it is set, with the events that overtook the answer first. When the
// client ends (nginx exited, the serve probe went away) every breakpoint still open ends with
// that reason: a front end never waits on a breakpoint nothing can end any more.
import { debuglog } from 'node:util';
import type { BreakpointEvent, BreakpointSet, Disposer, ProbeClient, WorkerBreakpoint } from '../client/client.js';
import { Listeners } from '../client/client.js';
import type { Debugger } from '../probe/protocol-types.js';
import { View } from './view.js';

const trace = debuglog('nffi');

export interface WorkerHits {
  pid: number;
  state: WorkerBreakpoint['state'];
  hits: number;
  dropped: number;
  mode?: Debugger.BreakpointMode;
  error?: string;
  reason?: string;
}

export interface BreakpointView {
  id: number;
  /** Known when set through this store or listed by load(). */
  spec?: Debugger.BreakpointSpec;
  hits: number;
  /** Hits the workers could not ship (their capture ring was full), as they reported. */
  dropped: number;
  workers: WorkerHits[];
  /** Why it left the set; undefined while it is on. */
  ended?: string;
}

export interface HitsState {
  breakpoints: BreakpointView[];
  /** The latest events of every breakpoint, oldest first, at most `keep`. */
  recent: BreakpointEvent[];
  /** Events that fell off the front of `recent`. */
  overflow: number;
}

export interface HitsOptions {
  /** Events kept in `recent`; default 500. */
  keep?: number;
  /** Ended breakpoints kept; default 50. */
  keepEnded?: number;
}

export interface Followed extends BreakpointSet {
  /** Stop passing this breakpoint's events to the listener given to set(). */
  unfollow: Disposer;
}

export class HitsView extends View<HitsState> {
  private readonly bps = new Map<number, BreakpointView>();
  private readonly events = new Listeners<[BreakpointEvent]>();
  private recent: BreakpointEvent[] = [];
  private overflow = 0;
  private readonly keep: number;
  private readonly keepEnded: number;
  /** Events taken since the state was last built; the listeners told once per batch of them. */
  private stale = false;
  /** A tell is queued (a microtask). */
  private telling = false;

  constructor(private readonly client: ProbeClient, opts: HitsOptions = {}) {
    super({ breakpoints: [], recent: [], overflow: 0 });
    this.keep = Math.max(0, opts.keep ?? 500);
    this.keepEnded = Math.max(0, opts.keepEnded ?? 50);
    this.hold(client.onBreakpoint((e) => this.take(e)));
    this.hold(client.onEnd((why) => {
      for (const b of [...this.bps.values()]) if (b.ended === undefined) this.take({ event: 'ended', id: b.id, reason: why });
    }));
  }

  /** Set `spec`; `listener` gets every event of the new breakpoint from the moment it was sent. */
  async set(spec: Debugger.BreakpointSpec, listener: (e: BreakpointEvent) => void = () => undefined): Promise<Followed> {
    let id: number | undefined;
    const early: BreakpointEvent[] = [];
    const off = this.events.add((e) => {
      if (id === undefined) early.push(e);
      else if (e.id === id) listener(e);
    });
    try {
      const r = await this.client.setBreakpoint(spec);
      id = r.id;
      const b = this.entry(r.id);
      b.spec = spec;
      for (const w of r.workers) this.worker(b, w.pid, w);
      this.changed();
      for (const e of early.splice(0)) if (e.id === id) listener(e);
      return { ...r, unfollow: off };
    } catch (err) {
      off();
      throw err;
    }
  }

  /** The events of breakpoint `id` from now on. */
  follow(id: number, listener: (e: BreakpointEvent) => void): Disposer {
    return this.events.add((e) => {
      if (e.id === id) listener(e);
    });
  }

  /** Resolves with why breakpoint `id` ended (at once when it has). */
  ended(id: number): Promise<string> {
    const b = this.bps.get(id);
    if (b?.ended !== undefined) return Promise.resolve(b.ended);
    return new Promise((resolve) => {
      const off = this.follow(id, (e) => {
        if (e.event !== 'ended') return;
        off();
        resolve(e.reason);
      });
    });
  }

  /** Built when read after events came: a flood of 1,000 hits/s copies the breakpoints and the
   * recent list once per read or per batch of events, not once per hit. */
  override get state(): HitsState {
    if (this.stale) this.replace(this.build());
    return super.state;
  }

  get(id: number): BreakpointView | undefined {
    const b = this.bps.get(id);
    return b && copy(b);
  }

  /** Take it off every worker; false when it was gone already (count, timeout, the end). */
  async remove(id: number): Promise<boolean> {
    return this.client.removeBreakpoint(id).catch((err: Error) => {
      trace('remove %d: %s', id, err.message);
      return false;
    });
  }

  /** The breakpoints the probe holds now (a serve's, set by other front ends too). */
  async load(): Promise<HitsState> {
    for (const l of await this.client.listBreakpoints()) {
      const b = this.entry(l.id);
      Object.assign(b, { spec: l.spec, hits: Math.max(b.hits, l.hits ?? 0), dropped: Math.max(b.dropped, l.dropped ?? 0) });
      for (const w of l.workers) this.worker(b, w.pid, w);
    }
    return this.changed();
  }

  private take(e: BreakpointEvent): void {
    const b = this.entry(e.id);
    if (e.event === 'ended' && b.ended !== undefined) return; // ended already (the client's end came first)
    switch (e.event) {
      case 'hit': {
        b.hits++;
        this.worker(b, e.pid).hits++;
        break;
      }
      case 'dropped': {
        b.dropped += e.count;
        this.worker(b, e.pid).dropped += e.count;
        break;
      }
      case 'armed': {
        this.worker(b, e.pid, { state: e.state, ...(e.mode ? { mode: e.mode } : {}) });
        break;
      }
      case 'removed':
        this.worker(b, e.pid, { state: 'removed', reason: e.reason });
        break;
      case 'error':
        this.worker(b, e.pid, { error: e.message });
        break;
      case 'ended':
        b.ended = e.reason;
        this.pruneEnded();
        break;
    }
    this.recent.push(e);
    if (this.recent.length > this.keep) {
      const n = this.recent.length - this.keep;
      this.recent.splice(0, n);
      this.overflow += n;
    }
    this.stale = true;
    if (!this.telling) {
      // the events of one read from the probe arrive in one task: told once, after them
      this.telling = true;
      queueMicrotask(() => {
        this.telling = false;
        this.publish(this.state);
      });
    }
    this.events.emit(e);
  }

  private entry(id: number): BreakpointView {
    let b = this.bps.get(id);
    if (!b) this.bps.set(id, (b = { id, hits: 0, dropped: 0, workers: [] }));
    return b;
  }

  /** Worker `pid` of `b`, with `update` applied (its counts are kept as the events made them). */
  private worker(b: BreakpointView, pid: number, update?: Partial<WorkerHits>): WorkerHits {
    let w: WorkerHits | undefined;
    for (const x of b.workers) if (x.pid === pid) w = x;
    if (!w) {
      b.workers.push((w = { pid, state: 'pending', hits: 0, dropped: 0 }));
      b.workers.sort((x, y) => x.pid - y.pid);
    }
    if (!update) return w;
    const { hits, dropped, pid: _pid, ...rest } = update;
    Object.assign(w, rest);
    if (hits !== undefined) w.hits = Math.max(w.hits, hits);
    if (dropped !== undefined) w.dropped = Math.max(w.dropped, dropped);
    return w;
  }

  private pruneEnded(): void {
    const ended = [...this.bps.values()].filter((b) => b.ended !== undefined);
    for (const b of ended.slice(0, Math.max(0, ended.length - this.keepEnded))) this.bps.delete(b.id);
  }

  private build(): HitsState {
    this.stale = false;
    return { breakpoints: [...this.bps.values()].map(copy), recent: [...this.recent], overflow: this.overflow };
  }

  private changed(): HitsState {
    return this.publish(this.build());
  }
}

function copy(b: BreakpointView): BreakpointView {
  return { ...b, workers: b.workers.map((w) => ({ ...w })) };
}
