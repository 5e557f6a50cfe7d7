// A probe session over one pid: a master (all its workers, and the ones that replace them after
// `nginx -s reload`, attached automatically) or one worker. Attach and detach go through one
// promise chain, so a reload seen by the poller never races a detach or close. A worker that
// does not answer because another session holds it is said to be held, by whom (holders.ts),
// not to have no agent. A link lost while its worker still serves (the agent gave up on a probe
// that was stopped past the heartbeat, a transport error) is attached again, with backoff; when
// no worker can ever come back (the master, or the one worker, exited) the session ends and says
// why (onEnd).
import { attachWorker, checkPermission, type AttachOptions } from './attach.js';
import type { AgentLink } from './agent-link.js';
import { ProbeError } from './errors.js';
import { heldMessage, holdersOf } from './holders.js';
import { readNginxProc, workersOf, type NginxProc } from './procs.js';
import type { Agent, Commands, Events, Target } from './protocol-types.js';
import { runDirsOf } from './run-dir.js';

export interface SessionOptions extends AttachOptions {
  /** How often a master session looks for new workers; default 200 ms. */
  pollMs?: number;
  /** Delays before each new attach of a lost worker (default RETRY_MS); tests shorten them. */
  retryMs?: number[];
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
  /** We asked its agent to let go: a close is not a loss. */
  lettingGo?: boolean;
  /** Lost unexpectedly: when to try again, and how many tries so far. */
  retry?: { at: number; tries: number };
  /** When its link came up, and the tries that led to it (-1: the first attach). */
  attachedAt?: number;
  priorTries?: number;
}

/** A link that lasted less than this was not a recovery: the next loss backs off further. */
const STABLE_MS = 30_000;

/** Delays before each new attach of a lost worker (ms); then it stays detached, with its error. */
const RETRY_MS = [300, 1_000, 2_000, 4_000, 8_000];

export class Session {
  private readonly workers = new Map<number, Worker>();
  private readonly targetListeners: TargetListener[] = [];
  private readonly agentListeners: AgentEventListener[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private readonly endListeners: ((reason: string) => void)[] = [];
  private poller: NodeJS.Timeout | undefined;
  private closing = false;
  private endReason: string | undefined;

  private constructor(
    readonly root: NginxProc,
    private readonly opts: SessionOptions,
  ) {}

  /** Attach to `pid` (master or worker). Fails when no worker could be attached. */
  static async open(pid: number, opts: SessionOptions = {}): Promise<Session> {
    const root = readNginxProc(pid);
    if (!root) throw new ProbeError(`${pid} is not an nginx master or worker`, 'NOTNGINX');
    return Session.openOn(root, opts);
  }

  /** open() for a process already read from /proc (the caller resolved the pid once). */
  static async openOn(root: NginxProc, opts: SessionOptions = {}): Promise<Session> {
    const pid = root.pid;
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
    s.schedulePoll();
    return s;
  }

  get isMaster(): boolean {
    return this.root.role === 'master';
  }

  targets(): Target.TargetInfo[] {
    return [...this.workers.values()].sort((a, b) => a.proc.pid - b.proc.pid).map((w) => this.info(w));
  }

  onTargetEvent(listener: TargetListener): () => void {
    return subscribe(this.targetListeners, listener);
  }

  /** Events the agents send (anything but the heartbeat), with the worker pid. */
  onAgentEvent(listener: AgentEventListener): () => void {
    return subscribe(this.agentListeners, listener);
  }

  /** Called once, with why, when no worker can come back: the master or the one worker exited. */
  onEnd(listener: (reason: string) => void): () => void {
    if (this.endReason !== undefined) {
      listener(this.endReason);
      return () => undefined;
    }
    return subscribe(this.endListeners, listener);
  }

  /** Why the session ended on its own, or undefined while it goes on. */
  get ended(): string | undefined {
    return this.endReason;
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
      w.lettingGo = true;
      await w.link?.detach(reason);
    });
  }

  /** Detach every worker and stop following the master. Idempotent. */
  close(): Promise<void> {
    this.closing = true;
    if (this.poller) clearTimeout(this.poller);
    return this.serial(async () => {
      await this.letGoAll('session closed');
    });
  }

  private async letGoAll(reason: string): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => {
      w.lettingGo = true;
      return w.link?.detach(reason);
    }));
  }

  /** No worker can come back: let go of all and tell the listeners, once. */
  private async end(reason: string): Promise<void> {
    this.closing = true;
    await this.letGoAll(reason);
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    for (const l of this.endListeners.splice(0)) l(reason);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async attach(proc: NginxProc, retry?: Worker['retry']): Promise<void> {
    const w: Worker = { proc, retry };
    this.workers.set(proc.pid, w);
    try {
      const link = await attachWorker(proc, this.opts);
      w.link = link;
      w.hello = link.hello;
      link.onEvent((method, params) => {
        for (const l of this.agentListeners) l(proc.pid, method, params);
      });
      delete w.retry;
      w.attachedAt = Date.now();
      w.priorTries = retry?.tries ?? -1;
      link.onClose((reason) => {
        w.link = undefined;
        w.error = reason;
        // a worker that drops every link right after hello must not be attached (and re-armed)
        // every 300 ms for good: the backoff grows across short-lived links, then stops
        const quick = Date.now() - (w.attachedAt ?? 0) < STABLE_MS;
        const tries = quick ? (w.priorTries ?? -1) + 1 : 0;
        const delays = this.opts.retryMs ?? RETRY_MS;
        if (!w.lettingGo && !this.closing && tries < delays.length) w.retry = { at: Date.now() + delays[tries]!, tries };
        this.emit('Target.detachedFromTarget', { pid: proc.pid, reason });
      });
      if (this.closing) await link.detach('session closed');
      else this.emit('Target.attachedToTarget', { target: this.info(w) });
    } catch (err) {
      if (!(err instanceof ProbeError)) throw err;
      w.error = err.code === 'NOAGENT' ? (this.heldBy(proc) ?? err.message) : err.message;
      const delays = this.opts.retryMs ?? RETRY_MS;
      if (retry && retry.tries + 1 < delays.length) w.retry = { at: Date.now() + delays[retry.tries + 1]!, tries: retry.tries + 1 };
    }
  }

  /** Why a worker that did not answer is not a worker without an agent: another session holds
   * it (its agent serves one at a time). undefined when no other session does, or when that
   * cannot be told. */
  private heldBy(proc: NginxProc): string | undefined {
    const holders = holdersOf(proc.pid, runDirsOf(proc.uid, this.opts.runDir));
    return holders?.length ? heldMessage(proc.pid, holders[0]!) : undefined;
  }

  private schedulePoll(): void {
    if (this.closing) return;
    this.poller = setTimeout(() => {
      void this.serial(() => this.poll()).finally(() => this.schedulePoll());
    }, this.opts.pollMs ?? 200);
    this.poller.unref();
  }

  /** Attach new workers and again the ones lost while serving; let go of the ones shutting
   * down or gone; end the session when nothing can come back. */
  private async poll(): Promise<void> {
    if (this.closing) return;
    if (this.root.role === 'worker') {
      const now = readNginxProc(this.root.pid);
      // a later process with its pid is not the worker: it exited
      if (!now || now.start !== this.root.start) return this.end(`worker ${this.root.pid} exited`);
      const w = this.workers.get(this.root.pid);
      if (now.shuttingDown && !w?.link) return this.end(`worker ${this.root.pid} is shutting down`);
      return this.retryLost(new Set([this.root.pid]));
    }
    if (readNginxProc(this.root.pid)?.start !== this.root.start) return this.end(`nginx master ${this.root.pid} exited`);
    const serving = workersOf(this.root.pid);
    const current = new Set(serving.map((p) => p.pid));
    const starts = new Map(serving.map((p) => [p.pid, p.start]));
    for (const [pid, w] of this.workers) {
      // the same pid with another start time is a new worker: this one is gone
      if (current.has(pid) && starts.get(pid) === w.proc.start) continue;
      w.lettingGo = true;
      if (w.link) await w.link.detach('worker shutting down');
      this.workers.delete(pid);
    }
    await this.retryLost(current);
    const fresh = serving.filter((p) => !this.workers.has(p.pid));
    await Promise.all(fresh.map((p) => this.attach(p)));
  }

  private async retryLost(serving: Set<number>): Promise<void> {
    const now = Date.now();
    const due = [...this.workers.values()].filter((w) => !w.link && w.retry && w.retry.at <= now && serving.has(w.proc.pid));
    await Promise.all(due.map((w) => this.attach(w.proc, w.retry)));
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

function subscribe<L>(list: L[], listener: L): () => void {
  list.push(listener);
  return () => {
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  };
}
