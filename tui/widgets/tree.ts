// An expandable tree: stack frames, their locals, upvalues and varargs, tables inside them.
// Enter, Space or → expands (→ on an open node goes to its first child), ← collapses (on a
// closed node or a leaf it goes to the parent). Children may be given, or loaded on first
// expansion (a table the capture cut at its depth limit: ask the agent); while they load a
// "loading…" row shows, and a failure shows as a row, never as a throw.
import { line, span, type Line, type Role, type Span } from '../style.js';
import { clean, strWidth, truncate } from '../text.js';
import type { Key } from '../term.js';
import type { KeyHelp, PaneView, RenderContext } from '../view.js';
import { NAV_HELP, navigate, scrollTo } from './nav.js';

export interface TreeNode {
  /** Stable across updates (a path such as 'f2/locals/ctx/user'): open nodes stay open. */
  id: string;
  label: string;
  value?: string;
  /** Colours the value ('dim' for nil, 'bad' for an error value, …). */
  role?: Role;
  children?: TreeNode[];
  /** Called once, on first expansion; the tree shows loading… until it settles. */
  loadChildren?: () => TreeNode[] | Promise<TreeNode[]>;
  /** Start open. */
  expanded?: boolean;
}

interface Loaded { state: 'loading' | 'done' | 'error'; children?: TreeNode[]; error?: string }
interface Row { id: string; depth: number; node?: TreeNode; parent?: string; note?: string; noteRole?: Role }

export interface TreeOptions {
  empty?: string;
  /** Something changed outside a key press (children arrived): ask for a render. */
  onChange?: () => void;
  onSelect?: (node: TreeNode | undefined) => void;
}

export class Tree implements PaneView {
  private roots: TreeNode[] = [];
  private open = new Set<string>();
  private seen = new Set<string>();
  private loaded = new Map<string, Loaded>();
  private rows: Row[] = [];
  private selectedId: string | undefined;
  private index = 0;
  private offset = 0;
  private page = 10;

  constructor(private readonly opts: TreeOptions = {}) {}

  /** New roots; open nodes stay open and the selection stays on the same id when it exists. */
  setRoots(roots: TreeNode[]): void {
    this.roots = roots;
    this.loaded.clear();
    this.rebuild();
  }

  get selected(): TreeNode | undefined {
    return this.rows[this.index]?.node;
  }

  isOpen(id: string): boolean {
    return this.open.has(id);
  }

  private childrenOf(node: TreeNode): TreeNode[] | undefined {
    return node.children ?? this.loaded.get(node.id)?.children;
  }

  private hasChildren(node: TreeNode): boolean {
    return node.loadChildren !== undefined || (node.children?.length ?? 0) > 0;
  }

  private rebuild(): void {
    const rows: Row[] = [];
    const walk = (nodes: TreeNode[], depth: number, parent?: string) => {
      for (const node of nodes) {
        if (node.expanded && !this.seen.has(node.id)) this.open.add(node.id);
        this.seen.add(node.id);
        rows.push({ id: node.id, depth, node, ...(parent !== undefined && { parent }) });
        if (!this.open.has(node.id) || !this.hasChildren(node)) continue;
        if (!node.children && node.loadChildren) {
          const l = this.loaded.get(node.id) ?? this.load(node);
          if (l.state === 'loading') rows.push({ id: `${node.id}\0…`, depth: depth + 1, parent: node.id, note: 'loading...', noteRole: 'dim' });
          if (l.state === 'error') rows.push({ id: `${node.id}\0!`, depth: depth + 1, parent: node.id, note: l.error ?? 'failed', noteRole: 'error' });
        }
        walk(this.childrenOf(node) ?? [], depth + 1, node.id);
      }
    };
    walk(this.roots, 0);
    this.rows = rows;
    const at = this.selectedId === undefined ? -1 : rows.findIndex((r) => r.id === this.selectedId);
    this.setIndex(at >= 0 ? at : Math.min(this.index, rows.length - 1));
  }

  private load(node: TreeNode): Loaded {
    const entry: Loaded = { state: 'loading' };
    this.loaded.set(node.id, entry);
    const settle = (l: Loaded) => {
      if (this.loaded.get(node.id) !== entry) return; // setRoots came in between
      this.loaded.set(node.id, l);
      this.rebuild();
      this.opts.onChange?.();
    };
    try {
      const got = node.loadChildren!();
      if (Array.isArray(got)) {
        entry.state = 'done';
        entry.children = got;
      } else {
        got.then((children) => settle({ state: 'done', children }),
          (err: unknown) => settle({ state: 'error', error: err instanceof Error ? err.message : String(err) }));
      }
    } catch (err) {
      entry.state = 'error';
      entry.error = err instanceof Error ? err.message : String(err);
    }
    return entry;
  }

  private setIndex(i: number): void {
    const before = this.selectedId;
    this.index = Math.max(0, Math.min(i, this.rows.length - 1));
    this.selectedId = this.rows[this.index]?.id;
    this.offset = scrollTo(this.index, this.offset, this.page, this.rows.length);
    if (before !== this.selectedId) this.opts.onSelect?.(this.selected);
  }

  /** Select the node with this id; false when it is not shown (a closed parent hides it). */
  select(id: string): boolean {
    const i = this.rows.findIndex((r) => r.id === id);
    if (i < 0) return false;
    this.setIndex(i);
    return true;
  }

  expand(id: string): void {
    this.open.add(id);
    this.rebuild();
  }

  collapse(id: string): void {
    this.open.delete(id);
    this.rebuild();
  }

  handleKey(key: Key): boolean {
    const to = navigate(key, this.index, this.rows.length, this.page);
    if (to !== undefined) {
      this.setIndex(to);
      return true;
    }
    const row = this.rows[this.index];
    if (!row) return false;
    const node = row.node;
    switch (key) {
      case 'enter': case 'space':
        if (!node || !this.hasChildren(node)) return false;
        if (this.open.has(node.id)) this.collapse(node.id);
        else this.expand(node.id);
        return true;
      case 'right':
        if (!node || !this.hasChildren(node)) return true;
        if (!this.open.has(node.id)) this.expand(node.id);
        else if (this.rows[this.index + 1]?.parent === node.id) this.setIndex(this.index + 1);
        return true;
      case 'left':
        if (node && this.open.has(node.id) && this.hasChildren(node)) this.collapse(node.id);
        else if (row.parent !== undefined) this.setIndex(this.rows.findIndex((r) => r.id === row.parent));
        return true;
      default:
        return false;
    }
  }

  keyHelp(): KeyHelp[] {
    return [...NAV_HELP,
      { keys: 'Enter/Space/→', help: 'expand, → again: child' },
      { keys: '←', help: 'collapse, to parent' }];
  }

  render(width: number, height: number, ctx: RenderContext): Line[] {
    if (height <= 0 || width <= 0) return [];
    const g = ctx.theme.glyphs;
    this.page = height;
    this.offset = scrollTo(this.index, this.offset, height, this.rows.length);
    if (this.rows.length === 0) return [line([span(' '), span(clean(this.opts.empty ?? 'nothing yet'), 'dim')])];
    const out: Line[] = [];
    for (let i = this.offset; i < Math.min(this.rows.length, this.offset + height); i++) {
      const row = this.rows[i]!;
      const selected = i === this.index;
      const indent = ' '.repeat(1 + row.depth * 2);
      const spans: Span[] = [span(selected ? g.gutter + indent.slice(1) : indent)];
      if (row.node) {
        const n = row.node;
        const mark = !this.hasChildren(n) ? g.leaf : this.open.has(n.id) ? g.open : g.closed;
        const label = clean(n.label);
        spans.push(span(`${mark} `), span(label, 'bold'));
        if (n.value !== undefined) {
          const room = width - strWidth(indent) - 2 - strWidth(label) - 3;
          spans.push(span(' = ', 'dim'), span(truncate(clean(n.value), Math.max(0, room), g.ellipsis), n.role));
        }
      } else {
        spans.push(span(`  ${clean(row.note ?? '')}`, row.noteRole));
      }
      out.push(line(spans, selected ? (ctx.focused ? 'selected' : 'selectedBlur') : undefined));
    }
    return out;
  }
}
