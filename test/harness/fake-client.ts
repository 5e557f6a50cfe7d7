// A ProbeClient for the view store's unit tests: answers from per-method handlers, events
// pushed by the test, and counts of the listeners it holds (so disposers can be checked).
import {
  Listeners, type BreakpointEvent, type BreakpointSet, type Disposer, type ListedBreakpoint, type Params, type ProbeClient,
  type Result, type TargetEvent, type WorkerMethod, type WorkerResult,
} from '../../client/client.js';
import type { Debugger, Target } from '../../probe/protocol-types.js';

type Handler = (pid: number, params: any) => unknown;

export class FakeClient implements ProbeClient {
  readonly kind = 'fake';
  readonly pid = 100;
  workers: Target.TargetInfo[] = [
    { pid: 101, attached: true, user: 'nobody' },
    { pid: 102, attached: true, user: 'nobody' },
  ];
  handlers: Partial<Record<WorkerMethod, Handler>> = {};
  calls: { pid: number; method: string; params: unknown }[] = [];
  setBreakpointImpl: (spec: Debugger.BreakpointSpec) => Promise<BreakpointSet> = async () => ({ id: 1, workers: [], unreached: [] });
  removeImpl: (id: number) => Promise<boolean> = async () => true;
  listed: ListedBreakpoint[] = [];
  readonly target = new Listeners<[TargetEvent]>();
  readonly breakpoint = new Listeners<[BreakpointEvent]>();
  readonly end = new Listeners<[string]>();

  async targets(): Promise<Target.TargetInfo[]> {
    return this.workers.map((w) => ({ ...w }));
  }

  async call<M extends WorkerMethod>(pid: number, method: M, params?: Params<M>): Promise<Result<M>> {
    this.calls.push({ pid, method, params });
    const h = this.handlers[method];
    if (!h) throw new Error(`${method} to worker ${pid}: no handler`);
    return (await h(pid, params)) as Result<M>;
  }

  async callAll<M extends WorkerMethod>(method: M, params?: Params<M>): Promise<WorkerResult<Result<M>>[]> {
    return Promise.all(this.workers.map(async (w) => {
      if (!w.attached) return { pid: w.pid, error: `not attached: ${w.error ?? 'detached'}` };
      try {
        return { pid: w.pid, result: await this.call(w.pid, method, params) };
      } catch (err) {
        return { pid: w.pid, error: (err as Error).message };
      }
    }));
  }

  setBreakpoint(spec: Debugger.BreakpointSpec): Promise<BreakpointSet> {
    return this.setBreakpointImpl(spec);
  }

  removeBreakpoint(id: number): Promise<boolean> {
    return this.removeImpl(id);
  }

  async listBreakpoints(): Promise<ListedBreakpoint[]> {
    return this.listed;
  }

  onTarget(listener: (e: TargetEvent) => void): Disposer {
    return this.target.add(listener);
  }

  onBreakpoint(listener: (e: BreakpointEvent) => void): Disposer {
    return this.breakpoint.add(listener);
  }

  onEnd(listener: (reason: string) => void): Disposer {
    return this.end.add(listener);
  }

  async close(): Promise<void> {}

  /** Listeners held, per kind. */
  held(): { target: number; breakpoint: number; end: number } {
    return { target: this.target.size, breakpoint: this.breakpoint.size, end: this.end.size };
  }
}
