// Coroutines of each worker as one table: id, kind, state, what it waits on, request, and the
// frame it is at in application code (store/frames.ts decides which). With --frames N, the N-1
// frames below it on lines of their own under the row. Then a summary: counts per kind, state
// and wait, and what was hidden (pending timers, dead threads, filtered rows).
import { userMessage } from '../errors.js';
import type { Lua } from '../../probe/protocol-types.js';
import { stateText, summarize, type FrameBrief, type WorkerCoroutines } from '../../store/coroutines.js';
import { defaultFrameRule, shownFrameIndex, type FrameRule } from '../../store/frames.js';
import { termText } from './escape.js';
import { ellipsize, formatTable, type Column, type Style, type TableOptions } from './table.js';

export type { CoroutineRow, FrameBrief, WorkerCoroutines } from '../../store/coroutines.js';

/** `/app/handler.lua:41 handlers.slow`, `co_yield [C]`, `content_by_lua(nginx.conf:25):1` (a
 * chunk name without LuaJIT's `=`, no `?` for a function without a name); `-` for none. File
 * first: cut in a narrow column, the file name, line and function stay (shortFrame). */
export function frameText(f: FrameBrief | undefined): string {
  if (!f) return '-';
  const name = f.function && f.function !== '?' ? ` ${f.function}` : '';
  if (f.source === '=[C]') return `${f.function || '?'} [C]`;
  const source = f.source.replace(/^=/, '');
  return `${f.line >= 0 ? `${source}:${f.line}` : source}${name}`;
}

/** The old order (`function source:line`), as the stack's frame lines read. */
export function where(f: FrameBrief | undefined): string {
  if (!f) return '-';
  return `${f.function || '?'} ${f.line >= 0 ? `${f.source}:${f.line}` : f.source}`;
}

export function waitText(w: Lua.Wait | null | undefined): string {
  if (!w) return '-';
  const extra = [w.task_id !== undefined ? `task ${w.task_id}` : '', w.detail ?? ''].filter(Boolean).join(' ');
  return extra ? `${w.kind} (${extra})` : w.kind;
}

/** `POST /api/x?y=1`; cut at `max` (a table cuts to its width itself; --json has it whole). */
export function requestText(r: Lua.Request | null | undefined, max = 48): string {
  if (!r) return '-';
  const text = `${r.method} ${r.uri}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A frame cell without the directories (`demo_app.lua:41 h`), an inline chunk as the line of
 * nginx.conf it is on (`content_by_lua(nginx.conf:25):3` → `nginx.conf:27`): a narrow column
 * keeps the file, line and as much of the function as fits. */
export const shortFrame = (cell: string): string => {
  const inline = /^\w+\(([^():]+):(\d+)\):(\d+)( .*)?$/.exec(cell);
  if (inline) return `${inline[1]!.replace(/^.*\//, '')}:${Number(inline[2]) + Number(inline[3]) - 1}${inline[4] ?? ''}`;
  return cell.replace(/^[^ ]*\/(?=[^/ ]*:\d+( |$))/, '');
};

const stateStyle = (s: string): Style | undefined =>
  s === 'running' ? 'green' : s === 'dead' || s === 'pending' || s === 'not started' ? 'dim' : s === 'normal' ? 'cyan' : undefined;

const COLUMNS: Column[] = [
  { title: 'worker', align: 'right' },
  { title: 'id', align: 'right' },
  { title: 'kind', priority: 3 },
  { title: 'state', style: stateStyle },
  { title: 'wait', priority: 2, min: 11, compact: (c) => c.replace(/ \(.*\)$/, ''), style: (c) => (c === 'unknown' ? 'yellow' : undefined) },
  { title: 'request', priority: 1, min: 14 },
  // file:line and the whole name of a handler (demo_app.lua:41 handlers.slow) before the rest
  { title: 'top frame', min: 30, compact: shortFrame },
];

export interface CoroutinesFormat extends TableOptions {
  /** Frames per row from the shown one (default 1: the table's column only). */
  frames?: number;
  rule?: FrameRule;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
const counts = (m: Record<string, number>): string => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');

/** Words joined into lines of at most `width` (a part longer than that stands alone). */
function wrap(parts: string[], sep: string, width: number | undefined): string[] {
  const lines: string[] = [];
  for (const p of parts) {
    const last = lines.length - 1;
    if (last >= 0 && (width === undefined || lines[last]!.length + sep.length + p.length <= width)) lines[last] += sep + p;
    else lines.push(p);
  }
  return lines;
}

/** `12 coroutines: request 3, timer 5 · suspended 10, running 2 · waiting on ffi 2` and what
 * was hidden. */
export function summaryLines(workers: WorkerCoroutines[], width?: number): string[] {
  const s = summarize(workers);
  const head = [`${plural(s.total, 'coroutine')}${s.total ? ':' : ''}`, counts(s.kinds)].filter(Boolean).join(' ');
  const parts = [head, counts(s.states), ...(Object.keys(s.waits).length ? [`waiting on ${counts(s.waits)}`] : [])].filter(Boolean);
  const hidden = [
    s.hidden.not_started ? plural(s.hidden.not_started, 'pending timer') : '',
    s.hidden.dead ? plural(s.hidden.dead, 'dead thread') : '',
  ].filter(Boolean);
  const lines = wrap(parts, ' · ', width);
  if (hidden.length) lines.push(`hidden: ${hidden.join(', ')} (--all shows them)`);
  if (s.hidden.filtered) lines.push(`${plural(s.hidden.filtered, 'coroutine')} did not match the filters`);
  return lines;
}

export function formatCoroutines(workers: WorkerCoroutines[], opts: CoroutinesFormat = {}): string {
  const rule = opts.rule ?? defaultFrameRule();
  const n = Math.max(1, opts.frames ?? 1);
  const all = workers.flatMap((w) => w.coroutines.map((c) => ({ pid: w.pid, c, at: shownFrameIndex(c.frames, rule) })));
  const rows = all.map(({ pid, c, at }) => [
    String(pid), String(c.id), c.kind, stateText(c), isPendingWait(c) ? '-' : waitText(c.wait),
    requestText(c.request, Infinity), at >= 0 ? frameText(c.frames[at]) : '-',
  ]);
  const errors = workers.filter((w) => w.error).map((w) => termText(userMessage(`worker ${w.pid}: ${w.error}`)));
  const cut = workers.filter((w) => w.truncated).map((w) => `worker ${w.pid}: the agent listed only part of its coroutines`);
  let lines = rows.length ? formatTable(COLUMNS, rows, opts).split('\n') : ['(no coroutines)'];
  if (n > 1 && rows.length) {
    // the frames below the shown one, under its row
    const under = all.map(({ c, at }) => (at < 0 ? [] : c.frames.slice(at + 1, at + n).map((f, k) =>
      ellipsize(`    #${at + 1 + k} ${termText(frameText(f))}`, opts.width ?? Infinity, 'end'))));
    lines = [lines[0]!, ...lines.slice(1).flatMap((l, i) => [l, ...under[i]!])];
  }
  return [...lines, ...summaryLines(workers, opts.width), ...cut, ...errors].join('\n');
}

/** A coroutine that never ran waits on nothing yet (the agent says `unknown`). */
const isPendingWait = (c: WorkerCoroutines['coroutines'][number]): boolean => stateText(c) !== c.state;
