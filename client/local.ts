// The probe in this process: a Session (probe/session.ts) over the pid and the Breakpoints
// (probe/breakpoints.ts) kept for it, for as long as the front end runs. The breakpoints are
// this client's own; they go with it.
import { overall } from '../probe/breakpoint-wire.js';
import { Breakpoints } from '../probe/breakpoints.js';
import type { ProbeError } from '../probe/errors.js';
import type { NginxProc } from '../probe/procs.js';
import type { Debugger, Target } from '../probe/protocol-types.js';
import { Session, type SessionOptions } from '../probe/session.js';
import type {
  BreakpointEvent, BreakpointSet, Disposer, ListedBreakpoint, Params, ProbeClient, Result, TargetEvent, WorkerMethod, WorkerResult,
} from './client.js';
import { unreached } from './reach.js';

export type LocalOptions = SessionOptions;

export class LocalClient implements ProbeClient {
  readonly kind = 'in-process';
  readonly pid: number;
  private readonly breakpoints: Breakpoints;

  private constructor(private readonly session: Session, private readonly opts: LocalOptions) {
    this.pid = session.root.pid;
    this.breakpoints = new Breakpoints(session);
  }

  /** Attach to `root` (a master: all its workers; or one worker). */
  static async open(root: NginxProc, opts: LocalOptions = {}): Promise<LocalClient> {
    return new LocalClient(await Session.openOn(root, opts), opts);
  }

  async targets(): Promise<Target.TargetInfo[]> {
    return this.session.targets();
  }

  call<M extends WorkerMethod>(pid: number, method: M, params?: Params<M>): Promise<Result<M>> {
    return this.session.call(pid, method, params);
  }

  callAll<M extends WorkerMethod>(method: M, params?: Params<M>): Promise<WorkerResult<Result<M>>[]> {
    return this.session.callAll(method, params);
  }

  async setBreakpoint(spec: Debugger.BreakpointSpec): Promise<BreakpointSet> {
    const { id, workers } = await this.breakpoints.set(spec);
    return { id, workers, unreached: unreached(this.pid, workers, this.opts.runDir) };
  }

  async removeBreakpoint(id: number): Promise<boolean> {
    try {
      await this.breakpoints.remove(id);
      return true;
    } catch (err) {
      if ((err as ProbeError).code === 'NOTFOUND') return false;
      throw err;
    }
  }

  async listBreakpoints(): Promise<ListedBreakpoint[]> {
    return (await this.breakpoints.list()).map(overall);
  }

  onTarget(listener: (e: TargetEvent) => void): Disposer {
    return this.session.onTargetEvent((method, params) => {
      if (method === 'Target.attachedToTarget') {
        listener({ event: 'attached', target: (params as Target.AttachedToTargetEvent).target });
      } else {
        const p = params as Target.DetachedFromTargetEvent;
        listener({ event: 'detached', pid: p.pid, reason: p.reason });
      }
    });
  }

  onBreakpoint(listener: (e: BreakpointEvent) => void): Disposer {
    return this.breakpoints.onEvent(listener);
  }

  onEnd(listener: (reason: string) => void): Disposer {
    return this.session.onEnd(listener);
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
