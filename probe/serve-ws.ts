// The CDP-style WebSocket side of `serve`: a per-worker socket forwards every domain but Agent
// and Target to that worker's agent; the browser socket answers Target.getTargets and carries
// the Target events. Messages are {id, method, params} / {id, result | error} / {method, params}.
import { debuglog } from 'node:util';
import type { WebSocket } from 'ws';
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

/** Hub of the open sockets of one serve, so session events reach the right ones. */
export class SocketHub {
  private readonly browsers = new Set<WebSocket>();
  private readonly workers = new Map<number, Set<WebSocket>>();

  constructor(private readonly session: Session) {
    session.onTargetEvent((method, params) => {
      for (const ws of this.browsers) send(ws, { method, params });
      if (method === 'Target.detachedFromTarget') {
        const pid = (params as { pid: number }).pid;
        for (const ws of this.workers.get(pid) ?? []) ws.close(1000, 'worker detached');
      }
    });
    session.onAgentEvent((pid, method, params) => {
      if (method.startsWith('Agent.')) return;
      for (const ws of this.workers.get(pid) ?? []) send(ws, { method, params });
    });
  }

  addBrowser(ws: WebSocket): void {
    this.browsers.add(ws);
    ws.on('close', () => this.browsers.delete(ws));
    serveRequests(ws, async (method) => {
      if (method === 'Target.getTargets') return { targets: this.session.targets() };
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
      if (method.startsWith('Agent.') || method.startsWith('Target.')) return refuse(method);
      return this.session.call(pid, method, params);
    });
  }

  closeAll(): void {
    for (const ws of this.browsers) ws.close(1001, 'probe exiting');
    for (const set of this.workers.values()) for (const ws of set) ws.close(1001, 'probe exiting');
  }
}
