// Breakpoint hits and logpoint messages as they come, newest first (the selection follows the
// newest while it is on the top row), above them one line per breakpoint: where, hits, drops,
// why it ended. The latest hits are kept in a ring (HitRing) that counts what fell off; the
// title says so. Enter opens a hit's full snapshot in the stack pane.
import { renderValue } from '../../cli/format/value.js';
import type { BreakpointView } from '../../store/hits.js';
import { fmtClock, fmtCount, fmtDuration } from '../format.js';
import { line, span, type Line, type Span } from '../style.js';
import type { KeyHelp, RenderContext } from '../view.js';
import { TablePane, type HitEvent, type PaneHost } from './common.js';
import { frameWhere, variables } from './values.js';

export interface HitItem { seq: number; hit: HitEvent }

/** The latest hits, at most `capacity`, numbered in the order they came (0, 1, …); the ones
 * that fell off are counted. A push costs the same however many are held (1,000 hits/s). */
export class HitRing {
  private readonly items: (HitEvent | undefined)[];
  private count = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<HitEvent | undefined>(Math.max(1, capacity));
  }

  push(h: HitEvent): void {
    this.items[this.count % this.items.length] = h;
    this.count++;
  }

  /** Hits received so far. */
  get total(): number {
    return this.count;
  }

  /** Hits that fell off the front. */
  get dropped(): number {
    return Math.max(0, this.count - this.items.length);
  }

  /** The hits still held that are numbered below `end`, oldest first. */
  before(end: number): HitItem[] {
    const out: HitItem[] = [];
    for (let seq = this.dropped; seq < Math.min(end, this.count); seq++) out.push({ seq, hit: this.items[seq % this.items.length]! });
    return out;
  }
}

/** What a hit says in one line: the logpoint's message, the task, or its first locals. */
export function hitSummary(h: HitEvent, unicode = true): string {
  if (typeof h.message === 'string') return h.message;
  if (h.task) {
    const t = h.task;
    if (t.phase === 'enqueue') return `enqueue ${t.runtime}.${t.method} ${t.req_len ?? 0}B ${JSON.stringify(t.req_preview ?? '')}`;
    return `resume ${t.runtime}.${t.method} ok=${String(t.ok)}${t.rc !== undefined ? ` rc=${t.rc}` : ''}${t.latency_ms ? ` ${fmtDuration(t.latency_ms.total, { unicode })}` : ''}`;
  }
  return variables(h.locals).slice(0, 6).map(([n, v]) => `${n}=${renderValue(v, 40)}`).join(' ');
}

function specText(b: BreakpointView): string {
  const s = b.spec;
  if (!s) return '';
  return ` ${s.line !== undefined ? `${s.url}:${s.line}` : s.url}${s.log !== undefined ? ' (log)' : ''}${s.condition !== undefined ? ' if …' : ''}`;
}

export class HitsPane extends TablePane<HitItem> {
  private bps: BreakpointView[] = [];
  private overflow = 0;
  private count = 0;

  constructor(host: PaneHost) {
    super(host, {
      key: (r) => String(r.seq),
      sort: { column: 'at', descending: true },
      flashMs: 1_000,
      empty: 'no hits yet: `:breakpoint FILE:LINE` sets one',
      filterText: (r) => `bp${r.hit.id} ${r.hit.pid} ${frameWhere(r.hit)} ${hitSummary(r.hit)} ${r.hit.request ? `${r.hit.request.method} ${r.hit.request.uri}` : ''}`,
      onActivate: (r) => host.openHit(r.hit, 'hits'),
      columns: [
        { id: 'at', title: 'time', width: 12, minWidth: 8, priority: 2, sortKey: 't', sortValue: (r) => r.seq,
          cell: (r) => fmtClock(r.hit.time * 1000, { utc: host.utc, millis: true }) },
        { id: 'bp', title: 'bp', width: 3, align: 'right', priority: 0, sortKey: 'b', sortValue: (r) => r.hit.id, cell: (r) => String(r.hit.id) },
        { id: 'pid', title: 'worker', width: 6, align: 'right', priority: 3, sortKey: 'p', sortValue: (r) => r.hit.pid, cell: (r) => String(r.hit.pid) },
        { id: 'where', title: 'where', width: 24, minWidth: 12, elide: 'start', priority: 1, cell: (r) => frameWhere(r.hit) },
        { id: 'msg', title: 'message / locals', width: 24, minWidth: 12, flex: true, priority: 0, cell: (r) => hitSummary(r.hit, host.theme.unicode) },
        { id: 'req', title: 'request', width: 20, minWidth: 10, flex: true, maxWidth: 50, priority: 4,
          cell: (r) => (r.hit.request ? `${r.hit.request.method} ${r.hit.request.uri}` : '') },
      ],
    });
  }

  /** The hits held that came before hit number `upTo` (a paused sample shows the hits it had),
   * and every breakpoint's counts. */
  setHits(ring: HitRing, upTo: number, bps: BreakpointView[]): void {
    const items = ring.before(upTo);
    this.bps = bps;
    this.overflow = ring.dropped;
    this.count = items.length;
    const top = this.table.counts.index === 0;
    this.table.setData(items);
    const first = this.table.visible()[0];
    if (top && first) this.table.select(String(first.seq));
  }

  /** Nothing to show: no breakpoint and no hit. */
  get idle(): boolean {
    return this.bps.length === 0 && this.table.counts.total === 0;
  }

  info(): string {
    const hits = this.bps.reduce((n, b) => n + b.hits, 0);
    const dropped = this.bps.reduce((n, b) => n + b.dropped, 0);
    const parts = [`${fmtCount(this.count)} shown`, `${fmtCount(hits)} hits`];
    if (dropped) parts.push(`${fmtCount(dropped)} dropped by workers`);
    if (this.overflow) parts.push(`${fmtCount(this.overflow)} past the buffer`);
    return parts.join(', ');
  }

  protected override above(_width: number, ctx: RenderContext): Line[] {
    if (this.bps.length === 0) return [];
    const g = ctx.theme.glyphs;
    const spans: Span[] = [span(' ')];
    const live = this.bps.filter((b) => b.ended === undefined);
    const shown = [...live, ...this.bps.filter((b) => b.ended !== undefined).slice(-2)];
    shown.forEach((b, i) => {
      if (i) spans.push(span(` ${g.vline} `, 'dim'));
      spans.push(span(`bp ${b.id}`, 'bold'), span(specText(b)));
      spans.push(span(` ${fmtCount(b.hits)} hit${b.hits === 1 ? '' : 's'}`));
      if (b.dropped) spans.push(span(` ${fmtCount(b.dropped)} dropped`, 'warn'));
      if (b.ended !== undefined) spans.push(span(` ended: ${b.ended}`, 'dim'));
    });
    return [line(spans)];
  }

  protected override ownHelp(): KeyHelp[] {
    return [{ keys: 'Enter', help: 'the hit\'s full snapshot' }, { keys: 'g', help: 'newest; the list follows it there' }];
  }
}
