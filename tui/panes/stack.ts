// The detail pane: the stack of one coroutine (asked for with locals, upvalues and varargs when
// opened) or the full snapshot of one breakpoint hit (request, message or task, frames, the hit
// frame's variables), as an expandable tree. Enter/Space/→ open a frame or a table, ← closes,
// r asks for the stack again, Esc goes back to the pane the drill started from.
import { taskLine } from '../../cli/format/hit.js';
import type { Lua } from '../../probe/protocol-types.js';
import type { StackState } from '../../store/stack.js';
import { fmtClock } from '../format.js';
import { line, span, type Line } from '../style.js';
import type { Key } from '../term.js';
import type { KeyHelp, PaneView, RenderContext } from '../view.js';
import { errorText } from '../widgets/statusline.js';
import { Tree, type TreeNode } from '../widgets/tree.js';
import { STEP_HELP, stepKey, type HitEvent, type PaneHost, type PaneId } from './common.js';
import { frameWhere, scopeNodes, stackFrameNode, variables } from './values.js';

type Shown =
  | { kind: 'none' }
  | { kind: 'loading'; pid: number; co: number }
  | { kind: 'error'; pid: number; co: number; message: string }
  | { kind: 'stack'; pid: number; co: number; state: StackState }
  | { kind: 'hit'; hit: HitEvent };

const list = <T>(x: T[] | undefined | unknown): T[] => (Array.isArray(x) ? (x as T[]) : []);

export interface StackPaneOptions {
  load(pid: number, co: number): Promise<StackState>;
  /** Esc: focus the pane the drill came from. */
  back(to: PaneId): void;
}

function requestNode(r: Lua.Request | null | undefined, prefix: string): TreeNode[] {
  return r ? [{ id: `${prefix}request`, label: 'request', value: `${r.method} ${r.uri}` }] : [];
}


export class StackPane implements PaneView {
  readonly tree: Tree;
  private shown: Shown = { kind: 'none' };
  private from: PaneId | undefined;
  private generation = 0;
  /** Hits shown so far: each one's nodes get their own ids (its frame #0 starts open). */
  private hitsShown = 0;

  constructor(private readonly host: PaneHost, private readonly opts: StackPaneOptions) {
    this.tree = new Tree({ empty: 'no frames: the coroutine has finished (or not started yet)', onChange: () => host.update() });
  }

  get title(): string {
    return this.shown.kind === 'hit' ? 'Hit snapshot' : 'Stack';
  }

  get current(): Shown {
    return this.shown;
  }

  info(): string {
    const s = this.shown;
    switch (s.kind) {
      case 'none': return '';
      case 'hit': return `bp ${s.hit.id}, worker ${s.hit.pid}`;
      default: return `co ${s.co}, worker ${s.pid}`;
    }
  }

  /** Ask for the stack of `co` on `pid`; `frame` opens and selects that frame once it is in. */
  async open(pid: number, co: number, from: PaneId | undefined, frame?: number): Promise<void> {
    const gen = ++this.generation;
    this.from = from;
    this.shown = { kind: 'loading', pid, co };
    this.host.update();
    try {
      const state = await this.opts.load(pid, co);
      if (gen !== this.generation) return;
      this.shown = { kind: 'stack', pid, co, state };
      // the first Lua frame (a waiting coroutine's top frame is the C function it yields in)
      const open = frame ?? state.frames.find((f) => f.what !== 'C')?.level ?? 0;
      const prefix = `${pid}:${co}/`;
      this.tree.setRoots([...requestNode(state.request, prefix), ...state.frames.map((f, i) => stackFrameNode(f, i, (f.level ?? i) === open, prefix))]);
      if (!this.tree.select(`${prefix}f${open}`)) this.tree.select(`${prefix}f0`);
    } catch (err) {
      if (gen !== this.generation) return;
      this.shown = { kind: 'error', pid, co, message: errorText(err) };
      this.host.error(`stack of co ${co} on worker ${pid}: ${errorText(err)}`);
    }
    this.host.update();
  }

  showHit(hit: HitEvent, from: PaneId | undefined): void {
    this.generation++;
    this.from = from;
    this.shown = { kind: 'hit', hit };
    const prefix = `hit${++this.hitsShown}/`;
    this.tree.setRoots(hitRoots(hit, this.host.utc, prefix));
    this.tree.select(`${prefix}f0`);
    this.host.update();
  }

  handleKey(key: Key): boolean {
    if (stepKey(this.host, key, false)) return true;
    if (key === 'escape' && this.from) {
      this.opts.back(this.from);
      return true;
    }
    if (key === 'r') {
      const s = this.shown;
      if (s.kind === 'stack' || s.kind === 'error' || s.kind === 'loading') void this.open(s.pid, s.co, this.from);
      return true;
    }
    return this.tree.handleKey(key);
  }

  keyHelp(): KeyHelp[] {
    return [...this.tree.keyHelp(), { keys: 'r', help: 'ask for the stack again' }, { keys: 'Esc', help: 'back to the pane you came from' }, STEP_HELP];
  }

  render(width: number, height: number, ctx: RenderContext): Line[] {
    const s = this.shown;
    const note = (text: string, role: 'dim' | 'error' = 'dim') => [line([span(' '), span(text, role)])];
    switch (s.kind) {
      case 'none': return note('Enter on a task, a coroutine or a hit shows its stack here');
      case 'loading': return note(`asking worker ${s.pid} for the stack of co ${s.co}…`);
      case 'error': return note(`no stack: ${s.message}`, 'error');
      default: return this.tree.render(width, height, ctx);
    }
  }
}

/** A hit's snapshot: what it was, the request, the message or the task, the frames with the
 * hit frame's variables under #0. */
export function hitRoots(hit: HitEvent, utc: boolean, prefix = ''): TreeNode[] {
  const at = fmtClock(hit.time * 1000, { utc, millis: true });
  const roots: TreeNode[] = [{ id: `${prefix}hit`, label: `bp ${hit.id}`, value: `worker ${hit.pid} at ${at}, ${frameWhere(hit)}` }, ...requestNode(hit.request, prefix)];
  if (typeof hit.message === 'string') roots.push({ id: `${prefix}message`, label: 'message', value: hit.message });
  if (hit.task) {
    const t = hit.task;
    const fields = Object.entries(t).filter(([k]) => k !== 'latency_ms').map(([k, v]) => ({ id: `${prefix}task/${k}`, label: k, value: JSON.stringify(v) }));
    if (t.latency_ms) for (const [k, v] of Object.entries(t.latency_ms)) fields.push({ id: `${prefix}task/latency/${k}`, label: `latency ${k}`, value: `${v}ms` });
    roots.push({ id: `${prefix}task`, label: 'task', value: taskLine(t).trim().replace(/^task /, ''), children: fields });
  }
  const vars = scopeNodes(`${prefix}f0`, variables(hit.locals), variables(hit.upvalues), list<Lua.Value>(hit.varargs));
  const frames = list<Lua.Frame>(hit.frames);
  if (frames.length === 0 && vars.length) roots.push({ id: `${prefix}f0`, label: '#0 (no frame)', children: vars, expanded: true });
  frames.forEach((f, i) => {
    const node: TreeNode = { id: `${prefix}f${i}`, label: `#${i} ${frameWhere(f)}`, value: f.function || '?' };
    if (i === 0 && vars.length) Object.assign(node, { children: vars, expanded: true });
    roots.push(node);
  });
  return roots;
}

