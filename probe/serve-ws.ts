// The CDP-style WebSocket side of `serve`: a per-worker socket forwards every domain but Agent,
// Target and Debugger to that worker's agent; of Agent it forwards only the read-only
// Agent.getStats (`workers` reads each worker's breakpoint mode from it) and refuses the rest
// (Agent.detach is the probe's: /json/close). The browser socket answers Target.getTargets and
// carries the Target events. The Debugger domain goes through the session's Breakpoints on both
// (ids shared by all workers): a worker socket sees its worker's view and events, the browser
// socket every worker's (probe/breakpoint-wire.ts); Debugger.getScripts is the agent's walk (on
// the browser socket, every worker's merged). Messages are {id, method, params} /
// {id, result | error} / {method, params}.
import { debuglog } from 'node:util';
import type { WebSocket } from 'ws';
import { overall, toWire } from './breakpoint-wire.js';
import { Breakpoints, type BreakpointInfo } from './breakpoints.js';
import { ProbeError } from './errors.js';
import type { Debugger } from './protocol-types.js';
import type { Session } from './session.js';

const trace = debuglog('nffi');

interface Request { id?: unknown; method?: unknown; params?: unknown }

function send(ws: WebSocket, message: unknown): void {
  if (ws.readyState !== ws.OPEN) return;
  trace('ws -> %j', message);
  ws.send(JSON.stringify(message));
}

function parse(data: unknown): Request | undefined {
  try {
    const m = JSON.parse(String(data)) as Request;
    return typeof m === 'object' && m !== null ? m : undefined;
  } catch {
    return undefined;
  }
}

type Handler = (method: string, params: unknown) => Promise<unknown>;

function serveRequests(ws: WebSocket, handle: Handler): void {
  ws.on('message', (data) => {
    const m = parse(data);
    trace('ws <- %j', m);
    if (!m || typeof m.id !== 'number' || typeof m.method !== 'string') {
      send(ws, { id: m?.id ?? null, error: { code: -32600, message: 'invalid request' } });
      return;
    }
    const id = m.id;
    handle(m.method, m.params).then(
      (result) => send(ws, { id, result: result ?? {} }),
      (err: Error & { agentCode?: number }) => send(ws, { id, error: { code: err.agentCode ?? -32000, message: err.message } }),
    );
  });
}

const refuse = (method: string): Promise<never> =>
  Promise.reject(Object.assign(new Error(`'${method}' wasn't found`), { agentCode: -32601 }));

const invalid = (message: string): Error => Object.assign(new ProbeError(message), { agentCode: -32602 });

function specOf(params: unknown): Debugger.BreakpointSpec {
  const spec = (params as { spec?: Debugger.BreakpointSpec } | undefined)?.spec;
  if (!spec || typeof spec.url !== 'string' || (!Number.isInteger(spec.line) && !spec.url.startsWith('ffi:'))) {
    throw invalid('setBreakpoint needs spec: {url: string, line: integer, ...} (no line for ffi:RUNTIME.METHOD)');
  }
  return spec;
}

function idOf(params: unknown): number {
  const id = (params as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'number') throw invalid('removeBreakpoint needs id: integer');
  return id;
}

/** Hub of the open sockets of one serve, so session events reach the right ones. */
export class SocketHub {
  private readonly browsers = new Set<WebSocket>();
  private readonly workers = new Map<number, Set<WebSocket>>();

  constructor(
    private readonly session: Session,
    private readonly breakpoints: Breakpoints,
  ) {
    session.onTargetEvent((method, params) => {
      for (const ws of this.browsers) send(ws, { method, params });
      if (method === 'Target.detachedFromTarget') {
        const pid = (params as { pid: number }).pid;
        for (const ws of this.workers.get(pid) ?? []) ws.close(1000, 'worker detached');
      }
    });
    session.onAgentEvent((pid, method, params) => {
      // Debugger events come through Breakpoints (count, shared ids) instead.
      if (method.startsWith('Agent.') || method.startsWith('Debugger.')) return;
      for (const ws of this.workers.get(pid) ?? []) send(ws, { method, params });
    });
    breakpoints.onEvent((e) => {
      const wire = toWire(e, breakpoints.get(e.id));
      for (const ws of this.browsers) send(ws, wire);
      const to = 'pid' in e ? [this.workers.get(e.pid) ?? []] : [...this.workers.values()];
      for (const set of to) for (const ws of set) send(ws, wire);
    });
  }

  /** The Debugger domain of the browser socket (every worker) or of worker `pid`. */
  private async debugger(method: string, params: unknown, pid?: number): Promise<unknown> {
    const bps = this.breakpoints;
    const mine = (info: BreakpointInfo): Debugger.Breakpoint =>
      Breakpoints.view(info, info.workers.find((w) => w.pid === pid));
    switch (method) {
      case 'Debugger.setBreakpoint': {
        const r = await bps.set(specOf(params));
        const info = bps.get(r.id);
        if (!info) throw new ProbeError(`breakpoint ${r.id} ended at once`);
        if (pid === undefined) return { breakpoint: overall(info) };
        const w = r.workers.find((x) => x.pid === pid);
        const out: Debugger.SetBreakpointResult = { breakpoint: mine(info) };
        if (w?.moved_from !== undefined) out.moved_from = w.moved_from;
        if (w?.moved_from !== undefined && w.top_level) out.top_level = true;
        if (w?.nearest !== undefined) out.nearest = w.nearest;
        if (w?.runtimes !== undefined) out.runtimes = w.runtimes;
        return out;
      }
      case 'Debugger.getScripts':
        // the agent's walk: one worker's on its socket, every worker's (merged) on the browser's
        if (pid !== undefined) return this.session.call(pid, 'Debugger.getScripts', {});
        return this.allScripts();
      case 'Debugger.removeBreakpoint':
        await bps.remove(idOf(params));
        return {};
      case 'Debugger.getBreakpoints': {
        const all = await bps.list();
        if (pid === undefined) return { breakpoints: all.map(overall) };
        return { breakpoints: all.filter((i) => i.workers.some((w) => w.pid === pid)).map(mine) };
      }
      default:
        return refuse(method);
    }
  }

  /** Every attached worker's loaded chunks, each chunk once (the widest line span seen). */
  private async allScripts(): Promise<Debugger.GetScriptsResult> {
    const pids = this.session.targets().filter((t) => t.attached).map((t) => t.pid);
    if (pids.length === 0) throw new ProbeError('no worker is attached');
    const all = await Promise.all(pids.map((pid) => this.session.call(pid, 'Debugger.getScripts', {}).catch((err: Error) => {
      trace('getScripts on %d: %s', pid, err.message);
      return { scripts: [] };
    })));
    const by = new Map<string, Debugger.Script>();
    for (const r of all) {
      for (const s of Array.isArray(r.scripts) ? r.scripts : []) {
        const had = by.get(s.source);
        if (!had) by.set(s.source, { ...s });
        else {
          if (s.first_line !== undefined && (had.first_line === undefined || s.first_line < had.first_line)) had.first_line = s.first_line;
          if (s.last_line !== undefined && (had.last_line === undefined || s.last_line > had.last_line)) had.last_line = s.last_line;
          if (s.functions !== undefined && (had.functions === undefined || s.functions > had.functions)) had.functions = s.functions;
        }
      }
    }
    return { scripts: [...by.values()].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0)) };
  }

  addBrowser(ws: WebSocket): void {
    this.browsers.add(ws);
    ws.on('close', () => this.browsers.delete(ws));
    serveRequests(ws, async (method, params) => {
      if (method === 'Target.getTargets') return { targets: this.session.targets() };
      if (method.startsWith('Debugger.')) return this.debugger(method, params);
      return refuse(method);
    });
  }

  addWorker(ws: WebSocket, pid: number): void {
    let set = this.workers.get(pid);
    if (!set) this.workers.set(pid, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    serveRequests(ws, async (method, params) => {
      if (method === 'Target.getTargets') return { targets: this.session.targets() };
      if (method === 'Agent.getStats') return this.session.call(pid, method, params);
      if (method.startsWith('Agent.') || method.startsWith('Target.')) return refuse(method);
      if (method.startsWith('Debugger.')) return this.debugger(method, params, pid);
      return this.session.call(pid, method, params);
    });
  }

  /** `why` goes in the close frame (front ends say it): why the probe exits. */
  closeAll(why = 'probe exiting'): void {
    const reason = Buffer.from(why).subarray(0, 120).toString();
    for (const ws of this.browsers) ws.close(1001, reason);
    for (const set of this.workers.values()) for (const ws of set) ws.close(1001, reason);
  }
}
