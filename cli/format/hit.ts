// Breakpoint events for people and for NDJSON. A hit is one header line
// `[hit bp 1] pid 4243 app/handler.lua:42 12:00:01.123 GET /items` then the frames, with the
// locals, upvalues and varargs of the breakpoint frame under #0 (as `stack --locals` shows them);
// a logpoint hit is the header followed by its message, on one line.
import type { BreakpointEvent } from '../../client/client.js';
import type { Debugger, Lua } from '../../probe/protocol-types.js';
import { readMode } from '../../store/workers.js';
import { termText } from './escape.js';
import { frameLine, position } from './stack.js';
import { renderValue } from './value.js';
import { modeText } from './workers.js';

type Hit = Extract<BreakpointEvent, { event: 'hit' }>;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Local wall-clock time of a unix time in seconds: 12:00:01.123. */
export function clock(seconds: number): string {
  const d = new Date(Math.round(seconds * 1000));
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** name → value, from the descriptor's object or a list of {name, value} (an empty Lua table may come as []). */
export function variables(raw: unknown): [string, Lua.Value][] {
  if (Array.isArray(raw)) {
    return raw.filter((v) => v && typeof v === 'object' && 'name' in v).map((v: Lua.Variable) => [v.name, v.value]);
  }
  if (raw && typeof raw === 'object') return Object.entries(raw as Record<string, Lua.Value>);
  return [];
}

const list = <T>(x: T[] | undefined | unknown): T[] => (Array.isArray(x) ? (x as T[]) : []);

export function hitHeader(h: Hit): string {
  const req = h.request && h.request.method ? termText(` ${h.request.method} ${h.request.uri}`) : '';
  return `[hit bp ${h.id}] pid ${h.pid} ${position(h.source, h.line, h.original)} ${clock(h.time)}${req}`;
}

const ms = (n: number): string => `${n < 10 ? n.toFixed(3) : n.toFixed(1)}ms`;

/** The task line of a task breakpoint hit: `  task enqueue echo.echo req 12 B "hello…"` /
 * `  task resume fail.x ok=false rc=1 err="error: x" res 8 B latency queue 0.010ms …`. */
export function taskLine(t: Debugger.TaskHit, width = 100): string {
  const max = Math.max(16, Math.floor(width / 3));
  const str = (s: string): string => termText(JSON.stringify(s.length > max ? s.slice(0, max) : s)) + (s.length > max ? '…' : '');
  const preview = (s: string | undefined, len: number | undefined): string =>
    s === undefined ? '' : ` ${len ?? s.length} B ${str(s)}`;
  const head = termText(`  task ${t.phase} ${t.runtime}.${t.method}`);
  if (t.phase === 'enqueue') return `${head} req${preview(t.req_preview ?? '', t.req_len)}`;
  const parts = [`ok=${t.ok}`];
  if (t.rc !== undefined) parts.push(`rc=${t.rc}`);
  if (t.err !== undefined) parts.push(`err=${str(t.err)}`);
  if (t.res_preview !== undefined) parts.push(`res${preview(t.res_preview, t.res_len)}`);
  const l = t.latency_ms;
  if (l) parts.push(`latency queue ${ms(l.queue)} service ${ms(l.service)} wakeup ${ms(l.wakeup)} total ${ms(l.total)}`);
  return `${head} ${parts.join(' ')}`;
}

export function formatHit(h: Hit, width = 100): string {
  const task = h.task ? taskLine(h.task, width) : undefined;
  if (typeof h.message === 'string') return `${hitHeader(h)} ${termText(h.message)}${task ? '\n' + task : ''}`;
  const out = [hitHeader(h)];
  if (task) out.push(task);
  const frames = list<Lua.Frame>(h.frames);
  const vars = [
    ...variables(h.locals).map(([n, v]) => `      ${termText(n)} = ${renderValue(v, width)}`),
    ...variables(h.upvalues).map(([n, v]) => `      (upvalue) ${termText(n)} = ${renderValue(v, width)}`),
  ];
  const va = list<Lua.Value>(h.varargs);
  if (va.length) vars.push(`      ... = ${va.map((v) => renderValue(v, width)).join(', ')}`);
  if (frames.length === 0) out.push(...vars);
  frames.forEach((f, i) => {
    out.push(`  ${frameLine(i, f)}`);
    if (i === 0) out.push(...vars);
  });
  return out.join('\n');
}

type Armed = Extract<BreakpointEvent, { event: 'armed' }>;

/** `watching`, `call hook: <reason>`; `mode unknown` for a line breakpoint an older agent armed
 * without saying; nothing for a task breakpoint without one (no line, so no line hook). */
function armedMode(e: Armed): string | undefined {
  if (e.mode === undefined) return e.source !== undefined ? 'mode unknown' : undefined;
  const m = readMode(e.mode);
  return termText(m.mode === 'unknown' ? `mode ${modeText(m)}` : modeText(m));
}

/** One human line (or block) per event; `ended` is the command's to say. */
export function formatEvent(e: BreakpointEvent): string | undefined {
  switch (e.event) {
    case 'hit':
      return formatHit(e);
    case 'armed': {
      const at = e.source !== undefined ? (e.line !== undefined ? position(e.source, e.line, e.original) : termText(`${e.source}:?`)) : '';
      if (e.state === 'pending') return `bp ${e.id} pending on worker ${e.pid}: the file is not loaded yet, it arms when it loads`;
      const why = e.top_level ? 'not in a function, and the file\'s top level ran when it loaded' : 'no code there';
      const moved = e.moved_from !== undefined ? termText(` (asked for line ${e.moved_from}: ${why})`) : '';
      // How this worker takes it: (watching), (call hook: traps not delivered on this machine).
      const m = armedMode(e);
      const mode = e.state === 'armed' && m ? ` (${m})` : '';
      return `bp ${e.id} ${termText(String(e.state))} on worker ${e.pid}${at ? ` at ${at}` : ''}${moved}${mode}`;
    }
    case 'removed':
      return `bp ${e.id} removed on worker ${e.pid} (${termText(e.reason)})`;
    case 'error':
      return `bp ${e.id} error on worker ${e.pid}: ${termText(e.message)}`;
    case 'dropped':
      return `bp ${e.id} dropped ${e.count} hit${e.count === 1 ? '' : 's'} on worker ${e.pid}`;
    case 'ended':
      return undefined;
  }
}

/** The NDJSON object of an event (undefined for `ended`), keys in a fixed order. */
export function eventJson(e: BreakpointEvent): Record<string, unknown> | undefined {
  switch (e.event) {
    case 'hit': {
      const base = { event: 'hit', id: e.id, pid: e.pid, time: e.time, source: e.source, line: e.line, ...(e.original ? { original: e.original } : {}), frames: list<Lua.Frame>(e.frames) };
      const request = e.request ?? {};
      const task = e.task ? { task: e.task } : {};
      if (typeof e.message === 'string') return { ...base, message: e.message, request, ...task };
      return {
        ...base,
        locals: Object.fromEntries(variables(e.locals)),
        upvalues: Object.fromEntries(variables(e.upvalues)),
        varargs: list<Lua.Value>(e.varargs),
        request,
        ...task,
      };
    }
    case 'armed': {
      const o: Record<string, unknown> = { event: 'armed', id: e.id, pid: e.pid, state: e.state };
      if (e.source !== undefined) o.source = e.source;
      if (e.line !== undefined) o.line = e.line;
      if (e.moved_from !== undefined) o.moved_from = e.moved_from;
      if (e.top_level) o.top_level = true;
      if (e.original !== undefined) o.original = e.original;
      if (e.nearest !== undefined) o.nearest = e.nearest;
      if (e.runtimes !== undefined) o.runtimes = e.runtimes;
      // As the agent gave it; {mode: "unknown", reason} when it gave none for a line breakpoint.
      if (e.mode !== undefined) o.mode = e.mode;
      else if (e.source !== undefined) o.mode = readMode(undefined);
      return o;
    }
    case 'removed':
      return { event: 'removed', id: e.id, pid: e.pid, reason: e.reason };
    case 'error':
      return { event: 'error', id: e.id, pid: e.pid, message: e.message };
    case 'dropped':
      return { event: 'dropped', id: e.id, pid: e.pid, count: e.count };
    case 'ended':
      return undefined;
  }
}

/** What a breakpoint just set will meet, from its workers' answers, as lines for stderr: FILE
 * matched no loaded chunk on any worker (pending, with the nearest loaded names), or RUNTIME of
 * ffi:RUNTIME.METHOD names no runtime any worker has loaded. */
export function specWarnings(spec: Debugger.BreakpointSpec, workers: { state: string; nearest?: string[]; runtimes?: string[] }[]): string[] {
  const on = workers.filter((w) => w.state !== 'failed');
  if (on.length === 0) return [];
  const union = (lists: (string[] | undefined)[]): string[] => [...new Set(lists.flatMap((l) => l ?? []))];
  const out: string[] = [];
  if (spec.line !== undefined && on.every((w) => w.state === 'pending')) {
    // each worker's nearest first: by the best rank any worker gives a name, then by name
    const rank = (n: string): number => Math.min(...on.map((w) => w.nearest?.indexOf(n) ?? -1).filter((i) => i >= 0));
    const near = union(on.map((w) => w.nearest)).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)).slice(0, 3);
    out.push(`no loaded chunk matches ${spec.url}; pending until one loads`
      + (near.length ? ` (nearest loaded: ${near.join(', ')})` : ' (none has a similar name; `scripts PID` lists them)'));
  }
  if (spec.line === undefined && on.every((w) => w.runtimes !== undefined)) {
    const runtime = spec.url.replace(/^ffi:/, '').replace(/\.[^.]*$/, '');
    const loaded = union(on.map((w) => w.runtimes));
    out.push(`no runtime named ${runtime} is loaded yet (loaded: ${loaded.join(', ') || 'none'}); ${spec.url} fires once one is`);
  }
  return out.map(termText);
}

/** `app/handler.lua:42 if n > 3` / `… log "n={n}"`, for lists. */
export function describeSpec(spec: Debugger.BreakpointSpec): { location: string; condition: string } {
  const cond = [spec.condition ? `if ${spec.condition}` : '', spec.log ? `log ${JSON.stringify(spec.log)}` : ''].filter(Boolean).join(' ');
  return { location: termText(spec.line === undefined ? spec.url : `${spec.url}:${spec.line}`), condition: termText(cond || '-') };
}
