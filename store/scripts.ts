// The Lua chunks each worker has loaded (Debugger.getScripts: the agent's sliced walk of what
// is reachable), optionally only those whose name holds a pattern. What `scripts` prints, and
// where a FILE of `breakpoint` can be looked up.
import type { ProbeClient } from '../client/client.js';
import type { Debugger } from '../probe/protocol-types.js';
import { list, View } from './view.js';

export interface WorkerScripts {
  pid: number;
  /** Sorted by name. */
  scripts: Debugger.Script[];
  /** Loaded chunks in all, before the pattern. */
  total: number;
  /** The worker did not answer: why. */
  error?: string;
}

export class ScriptsView extends View<WorkerScripts[]> {
  constructor(private readonly client: ProbeClient) {
    super([]);
  }

  /** Every worker's chunks whose name contains `pattern` (all when it is undefined). */
  async refresh(pattern?: string): Promise<WorkerScripts[]> {
    const all = await this.client.callAll('Debugger.getScripts', {});
    return this.publish(all.map((r): WorkerScripts => {
      if (r.error !== undefined) return { pid: r.pid, scripts: [], total: 0, error: r.error };
      // keys in one order: source, first_line, last_line, functions
      const scripts = list<Debugger.Script>(r.result?.scripts).filter((s) => typeof s?.source === 'string')
        .map(({ source, first_line, last_line, functions }) => ({ source, first_line, last_line, functions }));
      const shown = pattern === undefined ? scripts : scripts.filter((s) => s.source.includes(pattern));
      return { pid: r.pid, scripts: shown.sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0)), total: scripts.length };
    }).sort((a, b) => a.pid - b.pid));
  }
}
