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

export class StackView extends View<StackState | undefined> {
  constructor(private readonly client: ProbeClient) {
    super(undefined);
  }

  async load(pid: number, coroutine: number, opts: { locals?: boolean } = {}): Promise<StackState> {
    const r = await this.client.call(pid, 'Lua.getStack', { coroutine, locals: Boolean(opts.locals) });
    return this.publish({ pid, coroutine, request: r.request ?? null, frames: list<Lua.StackFrame>(r.frames) }) as StackState;
  }
}
