// Every coroutine of every worker, one row each: kind, state, what it waits on, its request,
// its top frames (Lua.getCoroutines).
import type { ProbeClient } from '../client/client.js';
import type { Lua } from '../probe/protocol-types.js';
import { list, View } from './view.js';

export interface FrameBrief { function: string; source: string; line: number }

export interface CoroutineRow {
  id: number;
  kind: string;
  state: string;
  wait: Lua.Wait | null;
  frames: FrameBrief[];
  request: Lua.Request | null;
}

/** truncated: the agent listed fewer than it holds (its answer said so). */
export interface WorkerCoroutines { pid: number; coroutines: CoroutineRow[]; error?: string; truncated?: boolean }

export const brief = (f: FrameBrief): FrameBrief => ({ function: f.function, source: f.source, line: f.line });

export function coroutineRow(c: Lua.Coroutine): CoroutineRow {
  return {
    id: c.id,
    kind: c.kind,
    state: c.state,
    wait: c.wait ?? null,
    frames: list<Lua.Frame>(c.frames).map(brief),
    request: c.request ?? null,
  };
}

export class CoroutinesView extends View<WorkerCoroutines[]> {
  constructor(private readonly client: ProbeClient) {
    super([]);
  }

  /** Ask every worker; `frames`: top frames per coroutine. */
  async refresh(frames: number): Promise<WorkerCoroutines[]> {
    const results = await this.client.callAll('Lua.getCoroutines', { frames });
    return this.publish(results.map((r) => ({
      pid: r.pid,
      coroutines: list<Lua.Coroutine>(r.result?.coroutines).map(coroutineRow),
      ...(r.error ? { error: r.error } : {}),
    })));
  }

  /**
   * Ask only workers `pids`, one request each; the others keep their last answer and workers not
   * in `alive` leave the state. A front end that samples often asks a few workers per tick this
   * way instead of walking every coroutine of every worker each time.
   */
  async refreshWorkers(pids: number[], frames: number, alive: number[] = pids): Promise<WorkerCoroutines[]> {
    const got = await Promise.all(pids.map(async (pid): Promise<WorkerCoroutines> => {
      try {
        const r = await this.client.call(pid, 'Lua.getCoroutines', { frames });
        return { pid, coroutines: list<Lua.Coroutine>(r?.coroutines).map(coroutineRow), ...(r?.truncated ? { truncated: true } : {}) };
      } catch (err) {
        return { pid, coroutines: [], error: (err as Error).message };
      }
    }));
    const keep = new Set(alive);
    const next = new Map(this.state.filter((w) => keep.has(w.pid)).map((w) => [w.pid, w]));
    for (const w of got) if (keep.has(w.pid)) next.set(w.pid, w);
    return this.publish([...next.values()].sort((a, b) => a.pid - b.pid));
  }
}
