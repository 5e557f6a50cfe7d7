// Where a front end sets its breakpoints: a running `serve` probe that holds the pid (its
// registry file says so; the breakpoint then outlives a reload with the serve session and is
// listed by `breakpoints PID`), or a session opened in-process for as long as the command runs.
// Both give the same events (probe/breakpoints.ts).
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { debuglog } from 'node:util';
import { fromWire, overall } from './breakpoint-wire.js';
import { Breakpoints, type BreakpointEvent, type BreakpointListener, type SetResult } from './breakpoints.js';
import { ProbeError } from './errors.js';
import { readNginxProc, workersOf } from './procs.js';
import type { Debugger } from './protocol-types.js';
import { readEntries, type ServeEntry } from './registry.js';
import { defaultRunDir } from './run-dir.js';
import { Session, type SessionOptions } from './session.js';

const trace = debuglog('nffi');

export interface BreakpointHost {
  /** `serve` (with its probe pid) or `in-process`. */
  readonly kind: string;
  set(spec: Debugger.BreakpointSpec): Promise<SetResult>;
  remove(id: number): Promise<void>;
  onEvent(listener: BreakpointListener): void;
  close(): Promise<void>;
}

/** The run directories where a serve probe for `pid` would register. */
export function serveDirs(pid: number, runDir?: string): string[] {
  if (runDir) return [runDir];
  const proc = readNginxProc(pid);
  if (!proc) throw new ProbeError(`${pid} is not an nginx master or worker`, 'NOTNGINX');
  const procs = proc.role === 'master' ? workersOf(pid, { shuttingDown: true }) : [proc];
  return [...new Set(procs.map((w) => defaultRunDir(w.uid)))];
}

/** The live serve probe whose session was opened on `pid` or holds worker `pid`. */
export function findServe(pid: number, runDir?: string): ServeEntry | undefined {
  const entries = readEntries(serveDirs(pid, runDir));
  return entries.find((e) => e.pid === pid) ?? entries.find((e) => e.workers.includes(pid));
}

class LocalHost implements BreakpointHost {
  readonly kind = 'in-process';
  private readonly bps: Breakpoints;

  constructor(private readonly session: Session) {
    this.bps = new Breakpoints(session);
  }

  set(spec: Debugger.BreakpointSpec): Promise<SetResult> {
    return this.bps.set(spec);
  }

  async remove(id: number): Promise<void> {
    // Gone already (count, timeout) is fine: the front end only wants it off.
    await this.bps.remove(id).catch((err: ProbeError) => {
      if (err.code !== 'NOTFOUND') throw err;
    });
  }

  onEvent(listener: BreakpointListener): void {
    this.bps.onEvent(listener);
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void; error: Error }

/** The browser socket of a serve probe, used for its Debugger domain. */
class ServeHost implements BreakpointHost {
  readonly kind: string;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: BreakpointListener[] = [];
  /** The breakpoints set through this connection. */
  private readonly mine = new Set<number>();

  private constructor(private readonly ws: WebSocket, entry: ServeEntry) {
    this.kind = `serve probe ${entry.probe_pid}`;
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', () => {
      for (const [id, p] of this.pending) {
        p.error.message += ': the serve probe closed the connection';
        p.reject(p.error);
        this.pending.delete(id);
      }
      for (const id of this.mine) this.emit({ event: 'ended', id, reason: 'serve probe gone' });
    });
  }

  static connect(entry: ServeEntry): Promise<ServeHost> {
    const ws = new WebSocket(`ws://127.0.0.1:${entry.port}/devtools/browser`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new ServeHost(ws, entry)));
      ws.once('error', (err) => reject(new ProbeError(`cannot reach the serve probe on port ${entry.port}: ${err.message}`)));
    });
  }

  async set(spec: Debugger.BreakpointSpec): Promise<SetResult> {
    const r = (await this.call('Debugger.setBreakpoint', { spec })) as { breakpoint: ReturnType<typeof overall> };
    this.mine.add(r.breakpoint.id);
    return { id: r.breakpoint.id, workers: Array.isArray(r.breakpoint.workers) ? r.breakpoint.workers : [] };
  }

  async remove(id: number): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return;
    await this.call('Debugger.removeBreakpoint', { id }).catch((err: Error) => trace('remove %d: %s', id, err.message));
  }

  onEvent(listener: BreakpointListener): void {
    this.listeners.push(listener);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === this.ws.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close(1000, 'done');
    });
  }

  private call(method: string, params: unknown): Promise<unknown> {
    const error = new ProbeError(method);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, error });
      const text = JSON.stringify({ id, method, params });
      trace('serve <- %s', text);
      this.ws.send(text);
    });
  }

  private emit(e: BreakpointEvent): void {
    for (const l of this.listeners) l(e);
  }

  private onMessage(text: string): void {
    let m: { id?: number; method?: string; params?: unknown; result?: unknown; error?: { message?: string } };
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    trace('serve -> %s', text.slice(0, 500));
    if (typeof m.id === 'number') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) {
        p.error.message = m.error.message ?? 'error';
        p.reject(p.error);
      } else {
        p.resolve(m.result);
      }
      return;
    }
    const e = typeof m.method === 'string' ? fromWire(m.method, m.params) : undefined;
    if (e) this.emit(e);
  }
}

/** Through the serve probe for `pid` when one runs, else a session opened here. */
export async function openBreakpointHost(pid: number, opts: SessionOptions = {}): Promise<BreakpointHost> {
  const entry = findServe(pid, opts.runDir);
  if (entry) {
    if (entry.pid !== pid) {
      throw new ProbeError(`worker ${pid} is held by serve probe ${entry.probe_pid} (opened on ${entry.pid}); set the breakpoint on ${entry.pid}`);
    }
    return ServeHost.connect(entry);
  }
  return new LocalHost(await Session.open(pid, opts));
}

function httpJson(port: number, method: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, timeout: 5_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // plain-text error
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(new ProbeError(`cannot reach the serve probe on port ${port}: ${err.message}`)));
    req.end();
  });
}

export type ListedBreakpoint = ReturnType<typeof overall>;

export async function listServeBreakpoints(entry: ServeEntry): Promise<ListedBreakpoint[]> {
  const r = await httpJson(entry.port, 'GET', '/json/breakpoints');
  if (r.status !== 200 || !Array.isArray(r.body)) throw new ProbeError(`serve probe ${entry.probe_pid}: ${String(r.body)}`);
  return r.body as ListedBreakpoint[];
}

/** false when the serve probe has no such breakpoint. */
export async function deleteServeBreakpoint(entry: ServeEntry, id: number): Promise<boolean> {
  const r = await httpJson(entry.port, 'DELETE', `/json/breakpoints/${id}`);
  if (r.status === 404) return false;
  if (r.status !== 200) throw new ProbeError(`serve probe ${entry.probe_pid}: ${String(r.body)}`);
  return true;
}
