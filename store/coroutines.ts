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

export interface WorkerCoroutines { pid: number; coroutines: CoroutineRow[]; error?: string }

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
}
