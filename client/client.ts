// One client over the probe's domains, whoever runs the probe: a session in this process
// (client/local.ts) or a running `serve` endpoint driven through chrome-remote-interface
// (client/remote.ts). client/connect.ts is the one place that decides which. Front ends (the
// CLI's commands, the TUI) and the view store (store/) see only this interface and plain data;
// nothing above it reaches into probe plumbing (DESIGN.md, "Front ends are views").
//
// Every subscription returns its disposer: a view that opens and closes leaves nothing behind.
import type { BreakpointEvent, WorkerBreakpoint } from '../probe/breakpoints.js';
import type { Commands, Debugger, Target } from '../probe/protocol-types.js';

export type { BreakpointEvent, WorkerBreakpoint };

/** Removes the listener it was returned for; calling it again does nothing. */
export type Disposer = () => void;

/** The methods a worker's agent answers (the probe answers Target and Debugger itself, but for
 * Debugger.getScripts: the agent's walk of its loaded chunks). */
export type WorkerMethod = Extract<keyof Commands, `Lua.${string}` | `FFI.${string}`> | 'Agent.getStats' | 'Debugger.getScripts';

export type Params<M extends keyof Commands> = Commands[M]['params'];
export type Result<M extends keyof Commands> = Commands[M]['result'];

/** One worker's answer to a request sent to every worker: its result, or why not. */
export interface WorkerResult<T = unknown> {
  pid: number;
  result?: T;
  error?: string;
}

/** Workers attach (a master's new ones after a reload, a lost link attached again) and detach. */
export type TargetEvent =
  | { event: 'attached'; target: Target.TargetInfo }
  | { event: 'detached'; pid: number; reason: string };

/** A worker the breakpoint is not on: never reached (`why`), or it refused the spec (its error
 * event says why). */
export interface Unreached {
  pid: number;
  why?: string;
}

export interface BreakpointSet {
  id: number;
  /** The workers asked, as they answered. */
  workers: WorkerBreakpoint[];
  /** The workers of the pid (a master: all its serving workers) the breakpoint is not on. */
  unreached: Unreached[];
}

/** A breakpoint over every worker: as its first armed worker sees it, with the totals, and the
 * per-worker states (probe/breakpoint-wire.ts, `overall`). */
export type ListedBreakpoint = Debugger.Breakpoint & { workers: WorkerBreakpoint[] };

export interface ProbeClient {
  /** `in-process`, or `serve probe <pid>`. */
  readonly kind: string;
  /** The pid the client was opened on: a master (all its workers) or one worker. */
  readonly pid: number;

  /** The workers, attached or not (then with why). */
  targets(): Promise<Target.TargetInfo[]>;
  /** One request to the agent of worker `pid`. */
  call<M extends WorkerMethod>(pid: number, method: M, params?: Params<M>): Promise<Result<M>>;
  /** The same request to every worker; one result or error per worker, by pid. Rejects when no
   * worker is attached at all. */
  callAll<M extends WorkerMethod>(method: M, params?: Params<M>): Promise<WorkerResult<Result<M>>[]>;

  /** Set on every attached worker (and on the ones that attach later). Rejects with the agents'
   * reason when no worker accepted it. */
  setBreakpoint(spec: Debugger.BreakpointSpec): Promise<BreakpointSet>;
  /** false when there is no such breakpoint (any more). */
  removeBreakpoint(id: number): Promise<boolean>;
  listBreakpoints(): Promise<ListedBreakpoint[]>;

  onTarget(listener: (e: TargetEvent) => void): Disposer;
  /** Every breakpoint's events, with the worker pid; `ended` when one leaves the set. */
  onBreakpoint(listener: (e: BreakpointEvent) => void): Disposer;
  /** Once, with why, when nothing more will come: the session ended (nginx exited) or the serve
   * probe went away. A listener added after that is called at once. */
  onEnd(listener: (reason: string) => void): Disposer;

  /** Let go (in-process: detach every worker; remote: close the connections). Idempotent. */
  close(): Promise<void>;
}

/** Listeners of one kind, each removable by the disposer `add` returns. */
export class Listeners<A extends unknown[]> {
  private readonly list: ((...args: A) => void)[] = [];

  add(listener: (...args: A) => void): Disposer {
    this.list.push(listener);
    return () => {
      const i = this.list.indexOf(listener);
      if (i >= 0) this.list.splice(i, 1);
    };
  }

  emit(...args: A): void {
    for (const l of [...this.list]) l(...args);
  }

  clear(): void {
    this.list.length = 0;
  }

  get size(): number {
    return this.list.length;
  }
}
