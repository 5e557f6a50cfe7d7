// A running `serve` probe (its registry entry: probe/registry.ts), through its WebSockets and
// chrome-remote-interface (client/cri.ts): the browser socket for Target and Debugger (every
// worker; the breakpoints are serve's, shared with its other front ends), and one socket per
// worker, opened when first asked, for that worker's agent. Every call has a timeout, every
// pending call is rejected when its socket closes, and the end of the browser socket is the
// end of this client, with serve's reason ("nginx master 123 exited").
//
// Opened on a worker of a master's serve, the client sees that worker only, and leaves the
// breakpoints to the master's (they are set on every worker of it).
import { debuglog } from 'node:util';
import { fromWire } from '../probe/breakpoint-wire.js';
import { ProbeError } from '../probe/errors.js';
import type { Debugger, Target } from '../probe/protocol-types.js';
import type { ServeEntry } from '../probe/registry.js';
import { refusal, serveWsUrl, unreachable } from '../probe/serve-client.js';
import {
  Listeners, type BreakpointEvent, type BreakpointSet, type Disposer, type ListedBreakpoint, type Params, type ProbeClient,
  type Result, type TargetEvent, type WorkerMethod, type WorkerResult,
} from './client.js';
import { CdpConnection, CdpError } from './cri.js';
import { unreached } from './reach.js';

const trace = debuglog('nffi');

export interface RemoteOptions {
  /** For each connect and each call; default 15 s (the probe's own link to an agent gives up
   * after 10 s, so its answer comes first). */
  timeoutMs?: number;
  /** --run-dir: where to look for who holds a worker the breakpoint did not reach. */
  runDir?: string;
}

export const DEFAULT_TIMEOUT_MS = 15_000;

/** What a socket error on connecting means for the user: one line. */
function reaching(entry: ServeEntry, path: string, err: Error): ProbeError {
  if (err instanceof ProbeError) return err;
  const status = /Unexpected server response: (\d+)/.exec(err.message);
  if (!status) return unreachable(entry, err);
  return refusal(entry, Number(status[1])) ?? new ProbeError(`serve probe ${entry.probe_pid} answered ${path} with HTTP ${status[1]}`);
}

export class RemoteClient implements ProbeClient {
  readonly kind: string;
  /** The serve's process. */
  readonly probePid: number;
  private readonly workers = new Map<number, Promise<CdpConnection>>();
  private readonly targetListeners = new Listeners<[TargetEvent]>();
  private readonly breakpointListeners = new Listeners<[BreakpointEvent]>();
  private readonly endListeners = new Listeners<[string]>();
  private endReason: string | undefined;
  private closing = false;

  private constructor(
    private readonly entry: ServeEntry,
    readonly pid: number,
    private readonly browser: CdpConnection,
    private readonly opts: RemoteOptions,
  ) {
    this.kind = `serve probe ${entry.probe_pid}`;
    this.probePid = entry.probe_pid;
    browser.onEvent((method, params) => this.onBrowserEvent(method, params));
    browser.onClose((said) => {
      // serve says why it exits when its nginx did; otherwise it is just gone
      if (!this.closing) this.end(said && said !== 'probe exiting' ? said : 'serve probe gone');
    });
  }

  /** Join the serve of `entry` for `pid` (the pid it was opened on, or one of its workers). */
  static async open(entry: ServeEntry, pid: number, opts: RemoteOptions = {}): Promise<RemoteClient> {
    const path = '/devtools/browser';
    const browser = await CdpConnection.open(serveWsUrl(entry, path), RemoteClient.cdpOptions(entry, opts))
      .catch((err: Error) => Promise.reject(reaching(entry, path, err)));
    return new RemoteClient(entry, pid, browser, opts);
  }

  private static cdpOptions(entry: ServeEntry, opts: RemoteOptions): { label: string; timeoutMs: number } {
    return { label: `serve probe ${entry.probe_pid}`, timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS };
  }

  /** Opened on one worker of a serve that holds a master. */
  private get scoped(): boolean {
    return this.entry.pid !== this.pid;
  }

  private mine(pid: number): boolean {
    return !this.scoped || pid === this.pid;
  }

  async targets(): Promise<Target.TargetInfo[]> {
    const r = (await this.browser.send('Target.getTargets')) as Target.GetTargetsResult;
    return (Array.isArray(r?.targets) ? r.targets : []).filter((t) => this.mine(t.pid));
  }

  async call<M extends WorkerMethod>(pid: number, method: M, params?: Params<M>): Promise<Result<M>> {
    const conn = await this.worker(pid);
    return (await conn.send(method, params)) as Result<M>;
  }

  async callAll<M extends WorkerMethod>(method: M, params?: Params<M>): Promise<WorkerResult<Result<M>>[]> {
    const all = (await this.targets()).sort((a, b) => a.pid - b.pid);
    if (!all.some((t) => t.attached)) throw new ProbeError(`no worker of ${this.pid} is attached`);
    return Promise.all(all.map(async (t): Promise<WorkerResult<Result<M>>> => {
      if (!t.attached) return { pid: t.pid, error: `not attached: ${t.error ?? 'detached'}` };
      try {
        return { pid: t.pid, result: await this.call(t.pid, method, params) };
      } catch (err) {
        return { pid: t.pid, error: (err as Error).message };
      }
    }));
  }

  async setBreakpoint(spec: Debugger.BreakpointSpec): Promise<BreakpointSet> {
    if (this.scoped) {
      throw new ProbeError(`worker ${this.pid} is held by serve probe ${this.probePid} (opened on ${this.entry.pid}); set the breakpoint on ${this.entry.pid}`, 'ELSEWHERE');
    }
    const r = (await this.browser.send('Debugger.setBreakpoint', { spec })) as { breakpoint: ListedBreakpoint };
    const workers = Array.isArray(r.breakpoint.workers) ? r.breakpoint.workers : [];
    return { id: r.breakpoint.id, workers, unreached: unreached(this.pid, workers, this.opts.runDir) };
  }

  async removeBreakpoint(id: number): Promise<boolean> {
    try {
      await this.browser.send('Debugger.removeBreakpoint', { id });
      return true;
    } catch (err) {
      // serve answers an error only for an id it does not have
      if (err instanceof CdpError && err.kind === 'answer') return false;
      throw err;
    }
  }

  async listBreakpoints(): Promise<ListedBreakpoint[]> {
    const r = (await this.browser.send('Debugger.getBreakpoints')) as { breakpoints?: ListedBreakpoint[] };
    return Array.isArray(r.breakpoints) ? r.breakpoints : [];
  }

  onTarget(listener: (e: TargetEvent) => void): Disposer {
    return this.targetListeners.add(listener);
  }

  onBreakpoint(listener: (e: BreakpointEvent) => void): Disposer {
    return this.breakpointListeners.add(listener);
  }

  onEnd(listener: (reason: string) => void): Disposer {
    if (this.endReason !== undefined) {
      listener(this.endReason);
      return () => undefined;
    }
    return this.endListeners.add(listener);
  }

  /** Listeners held, per kind (tests check that disposers remove them). */
  get listenerCounts(): { target: number; breakpoint: number; end: number; cdp: number } {
    return { target: this.targetListeners.size, breakpoint: this.breakpointListeners.size, end: this.endListeners.size, cdp: this.browser.eventListeners };
  }

  async close(): Promise<void> {
    this.closing = true;
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all([this.browser.close(), ...workers.map((w) => w.then((c) => c.close(), () => undefined))]);
  }

  private onBrowserEvent(method: string, params: unknown): void {
    if (method === 'Target.attachedToTarget') {
      const target = (params as Target.AttachedToTargetEvent).target;
      if (this.mine(target.pid)) this.targetListeners.emit({ event: 'attached', target });
      return;
    }
    if (method === 'Target.detachedFromTarget') {
      const p = params as Target.DetachedFromTargetEvent;
      if (this.mine(p.pid)) this.targetListeners.emit({ event: 'detached', pid: p.pid, reason: String(p.reason) });
      return;
    }
    const e = fromWire(method, params);
    if (e && (!('pid' in e) || this.mine(e.pid))) this.breakpointListeners.emit(e);
  }

  /** The socket of worker `pid`, opened once; forgotten when serve closes it (the worker left). */
  private worker(pid: number): Promise<CdpConnection> {
    if (this.endReason !== undefined) return Promise.reject(new ProbeError(`worker ${pid}: ${this.kind} ended: ${this.endReason}`));
    if (this.closing) return Promise.reject(new ProbeError(`worker ${pid}: the connection to ${this.kind} is closed`));
    if (!this.mine(pid)) return Promise.reject(new ProbeError(`worker ${pid} is not in this session (workers: ${this.pid})`));
    let conn = this.workers.get(pid);
    if (!conn) {
      const path = `/devtools/worker/${pid}`;
      conn = CdpConnection.open(serveWsUrl(this.entry, path), RemoteClient.cdpOptions(this.entry, this.opts))
        .catch((err: Error) => this.notReached(pid, path, err));
      this.workers.set(pid, conn);
      conn.then((c) => c.onClose((why) => {
        trace('%s: worker %d socket closed: %s', this.kind, pid, why);
        if (this.workers.get(pid) === conn) this.workers.delete(pid);
      }), () => this.workers.delete(pid));
    }
    return conn;
  }

  /** A worker socket that did not open: serve refuses (404) a worker it does not hold attached;
   * said as an in-process session says it. */
  private async notReached(pid: number, path: string, err: Error): Promise<never> {
    if (!/Unexpected server response: 404/.test(err.message)) throw reaching(this.entry, path, err);
    const all = await this.targets().catch((): Target.TargetInfo[] => []);
    const t = all.find((x) => x.pid === pid);
    if (t) throw new ProbeError(`worker ${pid} is not attached: ${t.error ?? 'detached'}`);
    throw new ProbeError(`worker ${pid} is not in this session (workers: ${all.map((x) => x.pid).join(', ') || 'none'})`);
  }

  private end(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    trace('%s ended: %s', this.kind, reason);
    const workers = [...this.workers.values()];
    this.workers.clear();
    for (const w of workers) void w.then((c) => c.close(), () => undefined);
    this.endListeners.emit(reason);
    this.endListeners.clear();
  }
}
