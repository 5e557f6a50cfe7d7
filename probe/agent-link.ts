// One probe↔agent link, over a Transport: requests matched to responses by id (each with a
// timeout), events, and the heartbeat of probe/README.md. The Error of a request is created
// when it is sent, so its stack points at the caller; when the link closes every pending
// request is rejected — nothing hangs. The agent's Agent.protocolError events (a frame it could
// not answer by id) are counted and traced, and passed on like any event.
import { debuglog } from 'node:util';
import { AgentError } from './errors.js';
import type { Agent, Commands } from './protocol-types.js';
import type { Transport } from './transport.js';

const trace = debuglog('nffi');

export interface LinkOptions {
  /** Per-request timeout; default 10 s. */
  requestTimeoutMs?: number;
  /** Agent.ping period; default 1 s. */
  pingIntervalMs?: number;
  /** Silence after which the agent counts as gone; default 5 s. */
  silenceMs?: number;
}

interface Pending {
  method: string;
  error: Error;
  timer: NodeJS.Timeout;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

interface Incoming {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string };
}

export type EventListener = (method: string, params: unknown) => void;

export class AgentLink {
  readonly pid: number;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners: EventListener[] = [];
  private readonly closeListeners: ((reason: string) => void)[] = [];
  private readonly pinger: NodeJS.Timeout;
  private lastHeard = Date.now();
  private lastPingSent = 0;
  private closeReason: string | undefined;
  private readonly requestTimeoutMs: number;
  private readonly silenceMs: number;
  /** Agent.protocolError events received: frames of ours the agent refused without an id. */
  protocolErrors = 0;

  constructor(
    private readonly transport: Transport,
    readonly hello: Agent.HelloEvent,
    opts: LinkOptions = {},
  ) {
    this.pid = hello.pid;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.silenceMs = opts.silenceMs ?? 5_000;
    transport.onMessage((m) => this.onMessage(m as Incoming));
    transport.onClose((reason) => this.finish(reason));
    this.pinger = setInterval(() => this.tick(), opts.pingIntervalMs ?? 1_000);
    this.pinger.unref();
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** A typed request for a command of the descriptor. */
  request<M extends keyof Commands>(method: M, params?: Commands[M]['params']): Promise<Commands[M]['result']> {
    return this.send(method, params) as Promise<Commands[M]['result']>;
  }

  /** Any method, as a front end forwards it (the agent answers unknown ones with an error). */
  send(method: string, params?: unknown): Promise<unknown> {
    const error = new AgentError(`${method} to worker ${this.pid}`);
    if (this.closeReason !== undefined) {
      error.message = `${method}: link to worker ${this.pid} is closed (${this.closeReason})`;
      return Promise.reject(error);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        error.message = `${method}: worker ${this.pid} did not answer within ${this.requestTimeoutMs} ms`;
        reject(error);
      }, this.requestTimeoutMs);
      this.pending.set(id, { method, error, timer, resolve, reject });
      this.transport.send(params === undefined ? { id, method } : { id, method, params });
    });
  }

  onEvent(listener: EventListener): void {
    this.eventListeners.push(listener);
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closeReason !== undefined) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  /** Ask the agent to detach (it cleans up and closes), then drop the link. */
  async detach(reason = 'detached'): Promise<void> {
    if (this.closed) return;
    try {
      await Promise.race([
        this.request('Agent.detach'),
        new Promise((resolve) => setTimeout(resolve, 1_000).unref()),
      ]);
    } catch {
      // gone already, or it refused: closing the socket ends its session as well
    }
    this.close(reason);
  }

  close(reason = 'closed'): void {
    this.finish(reason);
    this.transport.dispose();
  }

  private tick(): void {
    if (Date.now() - this.lastHeard > this.silenceMs) {
      this.close(`no frame from worker ${this.pid} for ${this.silenceMs} ms`);
      return;
    }
    this.ping();
  }

  private ping(): void {
    this.lastPingSent = Date.now();
    this.transport.send({ method: 'Agent.ping' });
  }

  private onMessage(m: Incoming): void {
    this.lastHeard = Date.now();
    if (typeof m.id === 'number' && m.method === undefined) return this.onResponse(m.id, m);
    if (typeof m.method !== 'string') return;
    if (m.method === 'Agent.ping') {
      // Answer the agent's own pings, but not its answers to ours (that would ping-pong).
      if (Date.now() - this.lastPingSent > 500) this.ping();
      return;
    }
    if (typeof m.id === 'number') {
      // The agent asks nothing of the probe today.
      this.transport.send({ id: m.id, error: { code: -32601, message: `unknown method ${m.method}` } });
      return;
    }
    if (m.method === 'Agent.protocolError') {
      this.protocolErrors++;
      const p = (m.params ?? {}) as { code?: unknown; message?: unknown };
      trace('worker %d: protocol error %s: %s', this.pid, p.code, p.message);
    }
    for (const l of this.eventListeners) l(m.method, m.params);
  }

  private onResponse(id: number, m: Incoming): void {
    const p = this.pending.get(id);
    if (!p) {
      trace('worker %d: response to unknown request %d', this.pid, id);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (m.error) {
      p.error.message = `${p.method} in worker ${this.pid}: ${m.error.message ?? 'error'}`;
      if (p.error instanceof AgentError) Object.assign(p.error, { agentCode: m.error.code, agentMessage: m.error.message });
      p.reject(p.error);
    } else {
      p.resolve(m.result ?? {});
    }
  }

  private finish(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    clearInterval(this.pinger);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.error.message = `${p.method}: link to worker ${this.pid} closed (${reason})`;
      p.reject(p.error);
      this.pending.delete(id);
    }
    for (const l of this.closeListeners.splice(0)) l(reason);
  }
}
