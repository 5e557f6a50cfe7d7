// The two header lines (the second hides with H or on short terminals): the target (master and
// worker pids, nginx / ngx_lua / LuaJIT versions), how we are attached (in-process or through
// `serve probe N`) and the refresh rate; then breakpoints (count, hits/s, drops), each worker's
// breakpoint mode, and workers that just attached or went away (a reload). The shell puts the
// PAUSED banner at the end of the first line.
import type { WorkerInfo } from '../../store/workers.js';
import { fmtCount, fmtDuration, fmtRate } from '../format.js';
import { line, span, type Line, type Span, type Theme } from '../style.js';

export interface GoneWorker { pid: number; reason: string; at: number }

export interface HeaderModel {
  pid: number;
  /** `in-process`, `serve probe N`; undefined while attaching. */
  attach: string | undefined;
  workers: WorkerInfo[];
  /** Workers that detached (exited, reload), latest last. */
  gone: GoneWorker[];
  /** pid → when it attached during this session. */
  joined: Map<number, number>;
  refreshMs: number;
  breakpoints: number;
  hitsPerSec: number | null;
  dropped: number;
  /** Why the session ended, once it has. */
  ended?: string;
  now: number;
}

const SHOW_GONE_MS = 60_000;
const NEW_MS = 10_000;

function versions(ws: WorkerInfo[]): string {
  const v = ws.find((w) => w.versions)?.versions;
  if (!v) return '';
  return `nginx ${v.nginx} ngx_lua ${v.ngx_lua} ${v.luajit.startsWith('LuaJIT') ? v.luajit : `LuaJIT ${v.luajit}`}`;
}

function targetText(m: HeaderModel): string {
  const live = m.workers.filter((w) => w.error === undefined);
  const isWorker = live.length <= 1 && live.some((w) => w.pid === m.pid);
  if (isWorker) return `worker ${m.pid}`;
  const pids = live.map((w) => w.pid);
  const list = pids.length === 0 ? 'no workers' : pids.length <= 4 ? `workers ${pids.join(' ')}` : `${pids.length} workers`;
  return `master ${m.pid} (${list})`;
}

/** Workers by mode: `101 102 watching`, `6 call hook: why` when many. */
function modes(m: HeaderModel, sep: string): Span[] {
  const groups = new Map<string, number[]>();
  for (const w of m.workers.filter((x) => x.error === undefined)) {
    const b = w.breakpoint_mode;
    const text = b.reason !== undefined && b.mode !== 'unknown' ? `${b.mode}: ${b.reason}` : b.mode;
    groups.set(text, [...(groups.get(text) ?? []), w.pid]);
  }
  const out: Span[] = [];
  for (const [text, pids] of groups) {
    if (out.length) out.push(span(sep, 'dim'));
    const fresh = pids.filter((p) => m.now - (m.joined.get(p) ?? -Infinity) < NEW_MS);
    const who = pids.length <= 3 ? pids.join(' ') : `${pids.length} workers`;
    out.push(span(who, fresh.length ? 'new' : undefined), span(` ${text}`, text === 'watching' ? 'ok' : text.startsWith('unknown') ? 'warn' : undefined));
  }
  return out;
}

export function headerLines(m: HeaderModel, _width: number, theme: Theme): Line[] {
  const g = theme.glyphs;
  const sep = g.sep;
  const first: Span[] = [span(' nffi-inspect', 'header')];
  if (m.attach === undefined) {
    first.push(span(` attaching to ${m.pid}${g.ellipsis}`));
    return [line(first)];
  }
  first.push(span(` ${targetText(m)}`), span(sep, 'dim'), span(m.attach), span(sep, 'dim'),
    span(`every ${fmtDuration(m.refreshMs, { unicode: theme.unicode })}`));
  if (m.ended !== undefined) first.push(span(sep, 'dim'), span(`ended: ${m.ended}`, 'error'));
  const v = versions(m.workers);
  if (v) first.push(span(sep, 'dim'), span(v, 'dim'));

  const second: Span[] = [span(' bp', 'label'), span(` ${m.breakpoints}`)];
  second.push(span(' hits', 'label'), span(` ${m.hitsPerSec === null ? '-' : fmtRate(m.hitsPerSec)}`));
  second.push(span(' dropped', 'label'), span(` ${fmtCount(m.dropped)}`, m.dropped ? 'warn' : undefined));
  const mode = modes(m, sep);
  if (mode.length) second.push(span(` ${g.vline} `, 'dim'), ...mode);
  const gone = m.gone.filter((x) => m.now - x.at < SHOW_GONE_MS);
  if (gone.length) {
    second.push(span(` ${g.vline} `, 'dim'));
    gone.slice(-3).forEach((x, i) => second.push(span(`${i ? sep : ''}${x.pid} gone: ${x.reason}`, 'dim')));
  }
  return [line(first), line(second)];
}
