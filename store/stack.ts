// One coroutine's stack (Lua.getStack), with locals, upvalues and varargs per frame when asked.
import type { ProbeClient } from '../client/client.js';
import type { Lua } from '../probe/protocol-types.js';
import { list, View } from './view.js';

export interface StackState {
  pid: number;
  coroutine: number;
  /** The request the coroutine serves, when it serves one. */
  request: Lua.Request | null;
  frames: Lua.StackFrame[];
}

/** The agent's own words for a refusal ("coroutine 83 of worker 2039 has finished"), without
 * the protocol method and worker the link puts before them. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}

function agentWords(err: unknown): string | undefined {
  const e = err as { agentMessage?: unknown; message?: unknown };
  if (typeof e?.agentMessage === 'string') return e.agentMessage;
  const m = typeof e?.message === 'string' ? /^Lua\.getStack in worker \d+: (.*)$/s.exec(e.message) : null;
  return m?.[1];
}

export class StackView extends View<StackState | undefined> {
  constructor(private readonly client: ProbeClient) {
    super(undefined);
  }

  async load(pid: number, coroutine: number, opts: { locals?: boolean } = {}): Promise<StackState> {
    let r;
    try {
      r = await this.client.call(pid, 'Lua.getStack', { coroutine, locals: Boolean(opts.locals) });
    } catch (err) {
      const words = agentWords(err);
      if (words !== undefined) throw new StackError(words);
      throw err;
    }
    return this.publish({ pid, coroutine, request: r.request ?? null, frames: list<Lua.StackFrame>(r.frames) }) as StackState;
  }
}
