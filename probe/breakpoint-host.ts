// Where a front end sets its breakpoints: a running `serve` probe of this user that holds the
// pid (its registry entry says so; the breakpoint then outlives a reload with the serve session
// and is listed by `breakpoints PID`), or a session opened in-process for as long as the command
// runs. Both give the same events (probe/breakpoints.ts).
import type { WebSocket } from 'ws';
import { debuglog } from 'node:util';
import { fromWire, overall } from './breakpoint-wire.js';
import { Breakpoints, type BreakpointEvent, type BreakpointListener, type SetResult } from './breakpoints.js';
import { ProbeError } from './errors.js';
import { readNginxProc } from './procs.js';
import type { Debugger } from './protocol-types.js';
import { readOwnEntries, type ServeEntry } from './registry.js';
import { serveHttp, serveSocket } from './serve-client.js';
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

/** This user's live serve probe whose session was opened on `pid` or holds worker `pid`. */
export function findServe(pid: number): ServeEntry | undefined {
  if (!readNginxProc(pid)) throw new ProbeError(`${pid} is not an nginx master or worker`, 'NOTNGINX');
  const entries = readOwnEntries();
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
    ws.on('close', (_code, why) => {
      for (const [id, p] of this.pending) {
        p.error.message += ': the serve probe closed the connection';
        p.reject(p.error);
        this.pending.delete(id);
      }
      // The probe says why it exits when its nginx did; otherwise it is just gone.
      const said = String(why);
      const reason = said && said !== 'probe exiting' ? said : 'serve probe gone';
      for (const id of this.mine) this.emit({ event: 'ended', id, reason });
    });
  }

  static async connect(entry: ServeEntry): Promise<ServeHost> {
    return new ServeHost(await serveSocket(entry, '/devtools/browser'), entry);
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
  const entry = findServe(pid);
  if (entry) {
    if (entry.pid !== pid) {
      throw new ProbeError(`worker ${pid} is held by serve probe ${entry.probe_pid} (opened on ${entry.pid}); set the breakpoint on ${entry.pid}`);
    }
    return ServeHost.connect(entry);
  }
  return new LocalHost(await Session.open(pid, opts));
}

export type ListedBreakpoint = ReturnType<typeof overall>;

export async function listServeBreakpoints(entry: ServeEntry): Promise<ListedBreakpoint[]> {
  const r = await serveHttp(entry, 'GET', '/json/breakpoints');
  if (r.status !== 200 || !Array.isArray(r.body)) throw new ProbeError(`serve probe ${entry.probe_pid}: ${String(r.body)}`);
  return r.body as ListedBreakpoint[];
}

/** false when the serve probe has no such breakpoint. */
export async function deleteServeBreakpoint(entry: ServeEntry, id: number): Promise<boolean> {
  const r = await serveHttp(entry, 'DELETE', `/json/breakpoints/${id}`);
  if (r.status === 404) return false;
  if (r.status !== 200) throw new ProbeError(`serve probe ${entry.probe_pid}: ${String(r.body)}`);
  return true;
}
