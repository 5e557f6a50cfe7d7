// The frame every pane lives in: it places the panes (layout.ts), paints them once per tick
// (scheduler.ts), routes keys and owns the shared widgets (status line, footer, help, `:` command
// line, `/` filter prompt). Pane code gives it views and plain callbacks; it never sees blessed.
//
// Keys go to the first taker: the help overlay when open, the command line or filter prompt
// when open, then q C-c ? : / Tab S-Tab (no pane can take those), then the focused view, then
// Space (pause), e (expand), H (header), + and - (refresh rate), Esc (un-expand, clear filter).
import { computeLayout, type Layout } from './layout.js';
import { RenderScheduler } from './scheduler.js';
import { line, span, type Line, type Theme } from './style.js';
import { spread, strWidth } from './text.js';
import type { Key, Surface, Term } from './term.js';
import { isFilterable, type KeyHelp, type PaneView } from './view.js';
import { CommandLine, FilterPrompt, type Completer } from './widgets/prompt.js';
import { DEFAULT_LEGEND, footerLine, HelpOverlay, type LegendEntry } from './widgets/help.js';
import { StatusLine } from './widgets/statusline.js';

export interface PaneConfig {
  id: string;
  title: string;
  view: PaneView;
  /** Right side of the title bar (counts, sort, rates). */
  info?: () => string;
  weight?: number;
  minHeight?: number;
  /** Rows it can use, title included (a queue pane with 3 runtimes wants 5). */
  want?: () => number | undefined;
  side?: 'left' | 'right';
}

export interface ShellOptions {
  term: Term;
  panes: PaneConfig[];
  /** Up to two header lines for `width` cells (the first is kept when collapsed). */
  header?: (width: number, theme: Theme) => Line[];
  /** A `:` line (trimmed); a thrown error or rejection goes to the status line, a string too. */
  onCommand?: (text: string) => void | string | Promise<void | string>;
  complete?: Completer;
  onQuit: () => void;
  onPause?: (paused: boolean) => void;
  /** + (1) or - (-1). */
  onRefresh?: (step: 1 | -1) => void;
  /** Right side of the status line. */
  statusRight?: () => string;
  legend?: LegendEntry[];
  now?: () => number;
  /** Scheduler delay (0: next tick). */
  delayMs?: number;
  /** After each draw reached the terminal (key-to-screen latency, render counts). */
  onDraw?: () => void;
}

const GLOBAL_HELP: KeyHelp[] = [
  { keys: 'q', help: 'quit' }, { keys: '?', help: 'help' }, { keys: ':', help: 'command' },
  { keys: '/', help: 'filter' }, { keys: 'Tab', help: 'next pane' }, { keys: 'e', help: 'expand' },
  { keys: 'Space', help: 'pause' }, { keys: 'H', help: 'header' }, { keys: '+/-', help: 'refresh' },
];
const MORE_HELP: KeyHelp[] = [
  { keys: 'S-Tab', help: 'previous pane' }, { keys: 'C-c', help: 'quit' },
  { keys: 'Esc', help: 'back out, unfilter' },
  { keys: '/!text', help: 'hide rows with text' },
];

export class Shell {
  readonly scheduler: RenderScheduler;
  readonly status: StatusLine;
  readonly cmdline: CommandLine;
  readonly filterPrompt = new FilterPrompt();
  readonly help = new HelpOverlay();
  paused = false;
  expanded = false;
  headerCollapsed = false;
  lastLayout: Layout | undefined;
  private focusIndex = 0;
  private readonly surfaces = new Map<string, Surface>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: ShellOptions) {
    const { term } = opts;
    if (opts.panes.length === 0) throw new Error('Shell: at least one pane');
    this.now = opts.now ?? Date.now;
    this.scheduler = new RenderScheduler({ draw: () => this.draw(), delayMs: opts.delayMs ?? 0 });
    this.status = new StatusLine({ now: this.now, onChange: () => this.update() });
    this.cmdline = new CommandLine({
      onSubmit: (text) => this.runCommand(text),
      ...(opts.complete && { complete: opts.complete }),
      onCandidates: (c) => this.status.info(c.join('  ')),
    });
    for (const id of ['header', 'separator', 'status', 'footer', ...opts.panes.map((p) => p.id), 'help']) {
      this.surfaces.set(id, term.surface());
    }
    this.unsubscribe.push(term.onKey((k) => this.key(k)), term.onResize(() => this.scheduler.flush()));
  }

  get focused(): PaneConfig {
    return this.opts.panes[this.focusIndex]!;
  }

  focus(id: string): void {
    const i = this.opts.panes.findIndex((p) => p.id === id);
    if (i >= 0) this.focusIndex = i;
    this.update();
  }

  /** Data changed: draw on the next tick (many updates in a tick make one draw). */
  update(): void {
    this.scheduler.request();
  }

  /** Say what went wrong on the status line. */
  report(err: unknown): void {
    this.status.error(err);
  }

  private runCommand(text: string): void {
    const done = (r: void | string) => { if (typeof r === 'string' && r) this.status.info(r); };
    try {
      const r = this.opts.onCommand ? this.opts.onCommand(text) : 'no commands here';
      if (r instanceof Promise) r.then(done, (e: unknown) => this.report(e));
      else done(r);
    } catch (err) {
      this.report(err);
    }
  }

  /** One key, routed as the header comment says. */
  key(k: Key): void {
    this.update();
    if (this.help.handleKey(k) || this.cmdline.handleKey(k) || this.filterPrompt.handleKey(k)) return;
    const view = this.focused.view;
    switch (k) {
      case 'q': case 'C-c': this.opts.onQuit(); return;
      case '?': this.help.toggle(); return;
      case ':': this.cmdline.open(); return;
      case '/':
        if (isFilterable(view)) this.filterPrompt.open(view);
        else this.status.info(`${this.focused.title} has nothing to filter`);
        return;
      case 'tab': case 'S-tab': this.cycle(k === 'tab' ? 1 : -1); return;
      default: break;
    }
    if (view.handleKey?.(k)) return;
    switch (k) {
      case 'space':
        this.paused = !this.paused;
        this.opts.onPause?.(this.paused);
        break;
      case 'e': this.expanded = !this.expanded; break;
      case 'H': this.headerCollapsed = !this.headerCollapsed; break;
      case '+': this.opts.onRefresh?.(1); break;
      case '-': this.opts.onRefresh?.(-1); break;
      case 'escape':
        if (this.expanded) this.expanded = false;
        else if (isFilterable(view) && view.filter) view.setFilter(undefined);
        break;
      default: break;
    }
  }

  private cycle(step: number): void {
    const n = this.opts.panes.length;
    this.focusIndex = (this.focusIndex + step + n) % n;
  }

  /** Paint every surface and render the screen now (the scheduler calls this once per tick). */
  draw(): void {
    const { term } = this.opts;
    if (term.disposed) return;
    const { cols, rows } = term.size();
    const theme = term.theme;
    const now = this.now();
    const headerRows = this.opts.header?.(cols, theme) ?? [];
    const layout = computeLayout({
      cols, rows, focus: this.focused.id, expanded: this.expanded,
      headerLines: Math.min(this.headerCollapsed || rows < 16 ? 1 : 2, headerRows.length),
      panes: this.opts.panes.map((p) => ({
        id: p.id, weight: p.weight, minHeight: p.minHeight, side: p.side, want: p.want?.(),
      })),
    });
    this.lastLayout = layout;
    const put = (id: string, rect: { x: number; y: number; width: number; height: number }, lines: Line[]) => {
      const s = this.surfaces.get(id)!;
      s.place(rect);
      s.setLines(lines);
    };

    const head = headerRows.slice(0, layout.header.height);
    if (this.paused && head.length) head[0] = this.withBanner(head[0]!, ' PAUSED ', cols);
    put('header', layout.header, head);

    for (const p of this.opts.panes) {
      const rect = layout.panes.get(p.id);
      if (!rect) {
        this.surfaces.get(p.id)!.place({ x: 0, y: 0, width: 0, height: 0 });
        continue;
      }
      put(p.id, rect, [this.titleBar(p, rect.width, layout), ...this.body(p, rect.width, rect.height - 1, now, theme)]);
    }
    const sep = layout.separator ?? { x: 0, y: 0, width: 0, height: 0 };
    put('separator', sep, Array.from({ length: sep.height }, () => line([span(theme.glyphs.vline, 'dim')])));

    this.status.setRight(this.opts.statusRight?.() ?? '');
    put('status', layout.status, [this.status.render(cols, theme)]);
    const foot = this.cmdline.active ? this.cmdline.render(cols, theme)
      : this.filterPrompt.active ? this.filterPrompt.render(cols, theme)
        : footerLine(GLOBAL_HELP, cols);
    put('footer', layout.footer, [foot]);

    const help = this.surfaces.get('help')!;
    if (this.help.open) {
      const w = cols <= 90 ? cols : 80;
      const h = Math.max(3, rows - 2);
      const rect = { x: Math.floor((cols - w) / 2), y: Math.floor((rows - h) / 2), width: w, height: h };
      const sections = [
        { title: 'Everywhere', keys: [...GLOBAL_HELP, ...MORE_HELP] },
        { title: `In ${this.focused.title}`, keys: this.focused.view.keyHelp?.() ?? [] },
      ];
      put('help', rect, this.help.render(sections, this.opts.legend ?? DEFAULT_LEGEND, w, h, theme));
      help.show();
      help.front();
    } else {
      help.hide();
    }
    term.render();
    this.opts.onDraw?.();
  }

  private withBanner(first: Line, banner: string, cols: number): Line {
    const room = Math.max(0, cols - strWidth(banner));
    const text = first.spans.map((s) => s.text).join('');
    if (strWidth(text) <= room) {
      return { ...first, spans: [...first.spans, span(' '.repeat(room - strWidth(text))), span(banner, 'paused')] };
    }
    return line([span(spread(text, '', room)), span(banner, 'paused')]);
  }

  private titleBar(p: PaneConfig, width: number, layout: Layout): Line {
    const focused = p.id === this.focused.id;
    const filter = isFilterable(p.view) && p.view.filter ? `  /${p.view.filter.text}` : '';
    const more = layout.mode !== 'expanded' && layout.hidden.length && p.id === [...layout.panes.keys()].pop()
      ? `  +${layout.hidden.length} more (Tab)` : '';
    const info = p.info?.() ?? '';
    // The focus shows as a mark too, for NO_COLOR, screen readers and text frames.
    const mark = focused ? this.opts.term.theme.glyphs.focus : ' ';
    return line([span(spread(`${mark} ${p.title}${filter}${more}`, info ? `${info} ` : '', width))], focused ? 'titleFocus' : 'title');
  }

  private body(p: PaneConfig, width: number, height: number, now: number, theme: Theme): Line[] {
    if (height <= 0) return [];
    try {
      return p.view.render(width, height, { theme, focused: p.id === this.focused.id, now });
    } catch (err) {
      // A pane that cannot draw says so in its place; the others go on.
      return [line([span(` cannot draw ${p.title}: ${err instanceof Error ? err.message : String(err)}`, 'error')])];
    }
  }

  /** Stop drawing and give the surfaces back; the term stays the caller's to dispose. */
  dispose(): void {
    this.scheduler.dispose();
    this.status.dispose();
    for (const u of this.unsubscribe) u();
    for (const s of this.surfaces.values()) s.destroy();
    this.surfaces.clear();
  }
}
