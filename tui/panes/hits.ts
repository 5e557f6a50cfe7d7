// Breakpoint hits and logpoint messages as they come, newest first (the selection follows the
// newest while it is on the top row), above them one line per breakpoint: where, hits, drops,
// why it ended. The latest hits are kept in a ring (HitRing) that counts what fell off; the
// title says so. Enter opens a hit's full snapshot in the stack pane. Only the newest hits keep
// their snapshot (one can be ~0.7 MB: 1,000 table entries of 256-byte keys and values); older
// ones keep what their row shows, and Enter on one says its snapshot went.
import { renderValue } from '../../cli/format/value.js';
import type { BreakpointView } from '../../store/hits.js';
import { fmtClock, fmtCount, fmtDuration } from '../format.js';
import { line, span, type Line, type Span } from '../style.js';
import type { KeyHelp, RenderContext } from '../view.js';
import { TablePane, type HitEvent, type PaneHost } from './common.js';
import { frameWhere, variables } from './values.js';

export interface HitItem {
  seq: number;
  /** With `full` false, only what the row shows: where, the logpoint's message or the task, the
   * request (no frames, locals, upvalues or varargs). */
  hit: HitEvent;
  /** The snapshot is held (Enter opens it). */
  full: boolean;
  /** The locals' line of a hit whose snapshot went (hitSummary of the snapshot). */
  summary?: string;
}

type Held = Omit<HitItem, 'seq'>;

const cap = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/** What a hit's row shows, without its snapshot. */
function rowOnly(h: HitEvent): Held {
  const hit: HitEvent = {
    event: 'hit', id: h.id, pid: h.pid, time: h.time, source: cap(String(h.source), 512), line: h.line, frames: [],
    ...(h.original && { original: { source: cap(String(h.original.source), 512), line: h.original.line } }),
    ...(typeof h.message === 'string' && { message: cap(h.message, 512) }),
    ...(h.request && { request: { method: cap(String(h.request.method), 32), uri: cap(String(h.request.uri), 1_024) } }),
  };
  const t = h.task;
  if (t) {
    hit.task = {
      phase: t.phase, runtime: cap(String(t.runtime), 128), method: cap(String(t.method), 128),
      ...(t.req_len !== undefined && { req_len: t.req_len }),
      ...(typeof t.req_preview === 'string' && { req_preview: cap(t.req_preview, 256) }),
      ...(t.ok !== undefined && { ok: t.ok }),
      ...(t.rc !== undefined && { rc: t.rc }),
      ...(t.latency_ms && { latency_ms: t.latency_ms }),
    };
  }
  return typeof h.message === 'string' || t ? { hit, full: false } : { hit, full: false, summary: hitSummary(h) };
}

/** The latest hits, at most `capacity`, numbered in the order they came (0, 1, …); the ones
 * that fell off are counted. Only the newest `snapshots` keep their full snapshot; older ones
 * keep their row (counted too). A push costs the same however many are held (1,000 hits/s). */
export class HitRing {
  /** The rows as the hits pane gets them: one object per hit for as long as it is held (a new
   * one only when its snapshot is let go), so each refresh hands the table the same objects
   * and only new hits are sorted in. */
  private readonly items: (HitItem | undefined)[];
  private readonly full: number;
  private count = 0;

  constructor(readonly capacity: number, readonly snapshots = 50) {
    this.items = new Array<HitItem | undefined>(Math.max(1, capacity));
    this.full = Math.max(0, Math.min(snapshots, this.items.length));
  }

  push(h: HitEvent): void {
    const n = this.items.length;
    const seq = this.count;
    this.items[seq % n] = { seq, hit: h, full: true };
    this.count++;
    // the hit that just left the newest `snapshots` keeps its row only
    const old = this.count - 1 - this.full;
    if (old >= this.dropped && old >= 0) {
      const held = this.items[old % n]!;
      if (held.full) this.items[old % n] = { seq: old, ...rowOnly(held.hit) };
    }
  }

  /** Hits received so far. */
  get total(): number {
    return this.count;
  }

  /** Hits that fell off the front. */
  get dropped(): number {
    return Math.max(0, this.count - this.items.length);
  }

  /** Hits whose snapshot was let go (their row kept, or since fallen off too). */
  get snapshotsDropped(): number {
    return Math.max(0, this.count - this.full);
  }

  /** The hits still held that are numbered below `end`, oldest first. */
  before(end: number): HitItem[] {
    const out: HitItem[] = [];
    for (let seq = this.dropped; seq < Math.min(end, this.count); seq++) out.push(this.items[seq % this.items.length]!);
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
  private snapshots = 0;

  constructor(host: PaneHost) {
    super(host, {
      key: (r) => String(r.seq),
      sort: { column: 'at', descending: true },
      flashMs: 1_000,
      // a hit's row never changes: its cells are fitted once (the clock's zone and the glyphs
      // are all they read besides the hit)
      cellsKey: () => `${host.utc}|${host.theme.unicode}`,
      empty: 'no hits yet: `:breakpoint FILE:LINE` sets one',
      filterText: (r) => `bp${r.hit.id} ${r.hit.pid} ${frameWhere(r.hit)} ${r.summary ?? hitSummary(r.hit)} ${r.hit.request ? `${r.hit.request.method} ${r.hit.request.uri}` : ''}`,
      onActivate: (r) => {
        if (r.full) host.openHit(r.hit, 'hits');
        else host.info(`the snapshot of this hit was dropped to bound memory (the newest ${this.snapshots} hits keep theirs)`);
      },
      columns: [
        { id: 'at', title: 'time', width: 12, minWidth: 8, priority: 2, sortKey: 't', sortValue: (r) => r.seq,
          cell: (r) => fmtClock(r.hit.time * 1000, { utc: host.utc, millis: true }) },
        { id: 'bp', title: 'bp', width: 3, align: 'right', priority: 0, sortKey: 'b', sortValue: (r) => r.hit.id, cell: (r) => String(r.hit.id) },
        { id: 'pid', title: 'worker', width: 6, align: 'right', priority: 3, sortKey: 'p', sortValue: (r) => r.hit.pid, cell: (r) => String(r.hit.pid) },
        { id: 'where', title: 'where', width: 24, minWidth: 12, elide: 'start', priority: 1, cell: (r) => frameWhere(r.hit) },
        { id: 'msg', title: 'message / locals', width: 24, minWidth: 12, flex: true, priority: 0, cell: (r) => r.summary ?? hitSummary(r.hit, host.theme.unicode) },
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
    this.snapshots = ring.snapshots;
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
    return [{ keys: 'Enter', help: 'the hit\'s full snapshot (the newest hits keep theirs)' }, { keys: 'g', help: 'newest; the list follows it there' }];
  }
}
