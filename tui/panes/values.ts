// Captured Lua values (read raw by the agent, bounded) as tree nodes: a table's entries are its
// children, a cut table says so in a last child, a cycle names the table it points back to.
// Stack frames and hit snapshots are built from them: frame → locals, upvalues, varargs.
import { variables } from '../../cli/format/hit.js';
import { renderValue } from '../../cli/format/value.js';
import type { Lua } from '../../probe/protocol-types.js';
import type { TreeNode } from '../widgets/tree.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const list = <T>(x: T[] | undefined | unknown): T[] => (Array.isArray(x) ? (x as T[]) : []);

function keyLabel(k: Lua.Value): string {
  if (k.type === 'string' && typeof k.value === 'string' && IDENT.test(k.value)) return k.value;
  return `[${renderValue(k, 40)}]`;
}

/** A value as a node: `label = value`, with its entries as children when it is a table. */
export function valueNode(id: string, label: string, v: Lua.Value): TreeNode {
  const node: TreeNode = { id, label, value: renderValue(v, 160) };
  if (v.type === 'nil') node.role = 'dim';
  if (v.type === 'table') {
    const entries = list<Lua.Entry>(v.entries);
    const children = entries.map((e, i) => (e.key.type === 'more'
      ? { id: `${id}/${i}`, label: '…', value: 'more keys than the capture keeps', role: 'dim' as const }
      : valueNode(`${id}/${keyLabel(e.key)}`, keyLabel(e.key), e.value)));
    if (v.truncated && entries[entries.length - 1]?.key.type !== 'more') {
      children.push({ id: `${id}/…`, label: '…', value: 'cut at the capture\'s depth or key limit', role: 'dim' });
    }
    if (children.length) node.children = children;
  }
  return node;
}

/** A variable as the tree shows it: a local the code does not read again from the frame's
 * point (type unavailable) dim, its value not shown. */
function variableNode(id: string, name: string, v: Lua.Value): TreeNode {
  if (v.type === 'unavailable') return { id, label: name, value: 'not used from here on', role: 'dim' };
  return valueNode(id, name, v);
}

/**
 * Locals, then an `upvalues` node and a `...` node (varargs) when there are any. Upvalues that
 * hold library code (the agent's `library` flag: C and FFI functions, loaded modules and their
 * functions cached in locals at a module's top) go in a `library` node of their own, closed, so
 * the application's upvalues come first (the CLI hides them unless --all-upvalues).
 */
export function scopeNodes(id: string, locals: [string, Lua.Value][], upvalues: [string, Lua.Value, boolean?][], varargs: Lua.Value[]): TreeNode[] {
  const out = locals.map(([n, v]) => variableNode(`${id}/l/${n}`, n, v));
  if (upvalues.length) {
    const mine = upvalues.filter((u) => !u[2]);
    const lib = upvalues.filter((u) => u[2]);
    const children = mine.map(([n, v]) => variableNode(`${id}/up/${n}`, n, v));
    if (lib.length) {
      children.push({
        id: `${id}/up/~lib`, label: 'library', value: `${lib.length} (C functions, ngx.*, loaded modules)`, role: 'dim',
        children: lib.map(([n, v]) => valueNode(`${id}/up/~lib/${n}`, n, v)),
      });
    }
    out.push({ id: `${id}/up`, label: 'upvalues', value: lib.length ? `${mine.length} + ${lib.length} library` : String(upvalues.length), children });
  }
  if (varargs.length) {
    out.push({ id: `${id}/va`, label: '...', value: `${varargs.length} vararg${varargs.length > 1 ? 's' : ''}`, children: varargs.map((v, i) => valueNode(`${id}/va/${i}`, String(i + 1), v)) });
  }
  return out;
}

export function frameWhere(f: { source: string; line: number; original?: { source: string; line: number } }): string {
  if (f.line < 0) return f.source;
  return f.original ? `${f.original.source}:${f.original.line} (${f.source.slice(f.source.lastIndexOf('/') + 1)}:${f.line})` : `${f.source}:${f.line}`;
}

/** One frame of Lua.getStack with locals: its variables as children, frame `open` expanded.
 * Ids start with `prefix` (one per coroutine: what was open stays open when it is asked for
 * again, and another coroutine's frames start as they should). */
export function stackFrameNode(f: Lua.StackFrame, i: number, open: boolean, prefix = ''): TreeNode {
  const level = typeof f.level === 'number' ? f.level : i;
  const id = `${prefix}f${level}`;
  const children = scopeNodes(id, list<Lua.Variable>(f.locals).map((v) => [v.name, v.value]),
    list<Lua.Variable>(f.upvalues).map((v) => [v.name, v.value, v.library === true]), list<Lua.Value>(f.varargs));
  return {
    id, label: `#${level} ${frameWhere(f)}`, value: f.function || '?',
    ...(children.length ? { children } : {}), ...(open && { expanded: true }),
  };
}

/** The locals of a hit's frame (an object by name, or a list of {name, value}). */
export { variables };
