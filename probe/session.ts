// A probe session over one pid: a master (all its workers, and the ones that replace them after
// `nginx -s reload`, attached automatically) or one worker. Attach and detach go through one
// promise chain, so a reload seen by the poller never races a detach or close. A worker that
// does not answer because another session holds it is said to be held, by whom (holders.ts),
// not to have no agent.
import { attachWorker, checkPermission, type AttachOptions } from './attach.js';
import type { AgentLink } from './agent-link.js';
import { ProbeError } from './errors.js';
import { heldMessage, holdersOf } from './holders.js';
import { readNginxProc, workersOf, type NginxProc } from './procs.js';
import type { Agent, Commands, Events, Target } from './protocol-types.js';
import { defaultRunDir } from './run-dir.js';

export interface SessionOptions extends AttachOptions {
  /** How often a master session looks for new workers; default 200 ms. */
  pollMs?: number;
}

export interface WorkerResult<T = unknown> {
  pid: number;
  result?: T;
  error?: string;
}

type TargetEvent = 'Target.attachedToTarget' | 'Target.detachedFromTarget';
export type TargetListener = <E extends TargetEvent>(method: E, params: Events[E]) => void;
export type AgentEventListener = (pid: number, method: string, params: unknown) => void;

interface Worker {
  proc: NginxProc;
  link?: AgentLink;
  hello?: Agent.HelloEvent;
  error?: string;
}

export class Session {
  private readonly workers = new Map<number, Worker>();
  private readonly targetListeners: TargetListener[] = [];
  private readonly agentListeners: AgentEventListener[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private poller: NodeJS.Timeout | undefined;
  private closing = false;

  private constructor(
    readonly root: NginxProc,
    private readonly opts: SessionOptions,
  ) {}

  /** Attach to `pid` (master or worker). Fails when no worker could be attached. */
  static async open(pid: number, opts: SessionOptions = {}): Promise<Session> {
    const root = readNginxProc(pid);
    if (!root) throw new ProbeError(`${pid} is not an nginx master or worker`, 'NOTNGINX');
    const s = new Session(root, opts);
    const initial = root.role === 'master' ? workersOf(pid) : [root];
    if (initial.length === 0) throw new ProbeError(`nginx master ${pid} has no workers`);
    checkPermission(initial[0]!);
    await s.serial(() => Promise.all(initial.map((w) => s.attach(w))));
    const attached = [...s.workers.values()].filter((w) => w.link);
    if (attached.length === 0) {
      const first = [...s.workers.values()][0];
      throw new ProbeError(first?.error ?? `no worker of ${pid} could be attached`);
    }
    if (root.role === 'master') s.schedulePoll();
    return s;
  }

  get isMaster(): boolean {
    return this.root.role === 'master';
  }

  targets(): Target.TargetInfo[] {
    return [...this.workers.values()].sort((a, b) => a.proc.pid - b.proc.pid).map((w) => this.info(w));
  }

  onTargetEvent(listener: TargetListener): void {
    this.targetListeners.push(listener);
  }

  /** Events the agents send (anything but the heartbeat), with the worker pid. */
  onAgentEvent(listener: AgentEventListener): void {
    this.agentListeners.push(listener);
  }

  /** Forward one request to the agent of worker `pid`. */
  call<M extends keyof Commands>(pid: number, method: M, params?: Commands[M]['params']): Promise<Commands[M]['result']>;
  call(pid: number, method: string, params?: unknown): Promise<unknown>;
  call(pid: number, method: string, params?: unknown): Promise<unknown> {
    const w = this.workers.get(pid);
    if (!w) {
      const pids = this.targets().map((t) => t.pid).join(', ');
      return Promise.reject(new ProbeError(`worker ${pid} is not in this session (workers: ${pids || 'none'})`));
    }
    if (!w.link) return Promise.reject(new ProbeError(`worker ${pid} is not attached: ${w.error ?? 'detached'}`));
    return w.link.send(method, params);
  }

  /** The same request to every worker; one result or error per worker (unattached ones: why). */
  async callAll<M extends keyof Commands>(method: M, params?: Commands[M]['params']): Promise<WorkerResult<Commands[M]['result']>[]> {
    const all = [...this.workers.values()].sort((a, b) => a.proc.pid - b.proc.pid);
    if (!all.some((w) => w.link)) throw new ProbeError(`no worker of ${this.root.pid} is attached`);
    return Promise.all(all.map(async (w) => {
      if (!w.link) return { pid: w.proc.pid, error: `not attached: ${w.error ?? 'detached'}` };
      try {
        return { pid: w.proc.pid, result: (await w.link.send(method, params)) as Commands[M]['result'] };
      } catch (err) {
        return { pid: w.proc.pid, error: (err as Error).message };
      }
    }));
  }

  /** Detach one worker (the agent removes what it installed). */
  detach(pid: number, reason = 'detached'): Promise<void> {
    return this.serial(async () => {
      const w = this.workers.get(pid);
      if (!w) throw new ProbeError(`worker ${pid} is not in this session`);
      await w.link?.detach(reason);
    });
  }

  /** Detach every worker and stop following the master. Idempotent. */
  close(): Promise<void> {
    this.closing = true;
    if (this.poller) clearTimeout(this.poller);
    return this.serial(async () => {
      await Promise.all([...this.workers.values()].map((w) => w.link?.detach('session closed')));
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async attach(proc: NginxProc): Promise<void> {
    const w: Worker = { proc };
    this.workers.set(proc.pid, w);
    try {
      const link = await attachWorker(proc, this.opts);
      w.link = link;
      w.hello = link.hello;
      link.onEvent((method, params) => {
        for (const l of this.agentListeners) l(proc.pid, method, params);
      });
      link.onClose((reason) => {
        w.link = undefined;
        w.error = reason;
        this.emit('Target.detachedFromTarget', { pid: proc.pid, reason });
      });
      if (this.closing) await link.detach('session closed');
      else this.emit('Target.attachedToTarget', { target: this.info(w) });
    } catch (err) {
      if (!(err instanceof ProbeError)) throw err;
      w.error = err.code === 'NOAGENT' ? (this.heldBy(proc) ?? err.message) : err.message;
    }
  }

  /** Why a worker that did not answer is not a worker without an agent: another session holds
   * it (its agent serves one at a time). undefined when no other session does, or when that
   * cannot be told. */
  private heldBy(proc: NginxProc): string | undefined {
    const holders = holdersOf(proc.pid, this.opts.runDir ? [this.opts.runDir, defaultRunDir(proc.uid)] : [defaultRunDir(proc.uid)]);
    return holders?.length ? heldMessage(proc.pid, holders[0]!) : undefined;
  }

  private schedulePoll(): void {
    if (this.closing) return;
    this.poller = setTimeout(() => {
      void this.serial(() => this.poll()).finally(() => this.schedulePoll());
    }, this.opts.pollMs ?? 200);
    this.poller.unref();
  }

  /** Attach new workers, let go of the ones shutting down or gone. */
  private async poll(): Promise<void> {
    if (this.closing) return;
    if (!readNginxProc(this.root.pid)) {
      this.closing = true;
      await Promise.all([...this.workers.values()].map((w) => w.link?.detach('nginx master exited')));
      return;
    }
    const serving = workersOf(this.root.pid);
    const current = new Set(serving.map((p) => p.pid));
    for (const [pid, w] of this.workers) {
      if (current.has(pid)) continue;
      if (w.link) await w.link.detach('worker shutting down');
      this.workers.delete(pid);
    }
    const fresh = serving.filter((p) => !this.workers.has(p.pid));
    await Promise.all(fresh.map((p) => this.attach(p)));
  }

  private emit<E extends TargetEvent>(method: E, params: Events[E]): void {
    for (const l of this.targetListeners) l(method, params);
  }

  private info(w: Worker): Target.TargetInfo {
    const h = w.hello;
    const t: Target.TargetInfo = { pid: w.proc.pid, attached: w.link !== undefined, user: w.proc.user };
    if (w.proc.role === 'worker') t.master_pid = w.proc.ppid;
    if (h) Object.assign(t, { worker_id: h.worker_id, versions: h.versions, jit: h.jit });
    if (!w.link && w.error) t.error = w.error;
    return t;
  }
}
