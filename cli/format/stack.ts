// Stacks like gdb's `bt full`: `#0 handler at /app/handler.lua:42`, then locals, upvalues and
// varargs indented under each frame.
import type { Lua } from '../../probe/protocol-types.js';
import { termText } from './escape.js';
import { cellWidth, ellipsize } from './table.js';
import { renderValue } from './value.js';

const arr = <T>(x: T[] | undefined): T[] => (Array.isArray(x) ? x : []);

/** `src/handler.ts:12 (handler.lua:30)` when a source map gives the original position, else
 * `/app/handler.lua:42`. */
export function position(source: string, line: number, original?: { source: string; line: number }): string {
  if (!original) return termText(`${source}:${line}`);
  return termText(`${original.source}:${original.line} (${source.slice(source.lastIndexOf('/') + 1)}:${line})`);
}

export function frameLine(level: number, f: { function: string; source: string; line: number; original?: { source: string; line: number } }): string {
  const where = f.line >= 0 ? position(f.source, f.line, f.original) : termText(f.source);
  return `#${level} ${termText(f.function || '?')} at ${where}`;
}

export interface StackFormatOptions {
  /** Also the upvalues that only keep library code at hand (C functions, ngx.*, loaded modules). */
  allUpvalues?: boolean;
  /** Cut every line to this many cells (undefined: as long as it is). */
  fit?: number;
}

export function formatStack(frames: Lua.StackFrame[], width = 100, request?: Lua.Request | null, opts: StackFormatOptions = {}): string {
  const out: string[] = request ? [termText(`request ${request.method} ${request.uri}`)] : [];
  if (frames.length === 0) return [...out, '(no frames: the coroutine is dead or has not started)'].join('\n');
  let hidden = 0;
  frames.forEach((f, i) => {
    out.push(frameLine(f.level ?? i, f));
    const locals = arr(f.locals);
    for (const v of locals) if (v.value?.type !== 'unavailable') out.push(`    ${termText(v.name)} = ${renderValue(v.value, width)}`);
    // locals the code does not read again where the frame waits: after a JIT trace exit their
    // slots may hold stale values, so the agent sends none; one line names them
    const dead = locals.filter((v) => v.value?.type === 'unavailable').map((v) => termText(v.name));
    if (dead.length) out.push(`    (not used from here on, not shown: ${dead.join(', ')})`);
    const ups = arr(f.upvalues);
    const shown = opts.allUpvalues ? ups : ups.filter((v) => !v.library);
    for (const v of shown) out.push(`    (upvalue) ${termText(v.name)} = ${renderValue(v.value, width)}`);
    if (shown.length < ups.length) {
      const n = ups.length - shown.length;
      hidden += n;
      out.push(`    (${n} library upvalue${n === 1 ? '' : 's'} hidden)`);
    }
    const va = arr(f.varargs);
    if (va.length) out.push(`    ... = ${va.map((v) => renderValue(v, width)).join(', ')}`);
  });
  if (hidden) out.push(`${hidden} upvalue${hidden === 1 ? '' : 's'} of library code hidden (C, ngx.*, modules): --all-upvalues`);
  // every line fits the output (80 piped, the terminal's width, none with --wide): a value is
  // cut at its end, a frame line keeps the end of its path (file:line)
  if (opts.fit !== undefined) {
    const fit = opts.fit;
    return out.map((l) => fitLine(l, fit)).join('\n');
  }
  return out.join('\n');
}

/** Every line of `text` cut to `width` cells (fitLine); undefined width: as it is. */
export function fitLines(text: string, width: number | undefined): string {
  return width === undefined ? text : text.split('\n').map((l) => fitLine(l, width)).join('\n');
}

/** A line cut to `width` cells. A line naming a place (`#2 name at /long/path/file.lua:41`,
 * `bp 1 hit on worker P at /long/path/file.lua:12 GET /x`) loses the start of its path first,
 * keeping file:line and what follows; then any line is cut at its end. */
function fitLine(l: string, width: number): string {
  const over = cellWidth(l) - width;
  if (over <= 0) return l;
  // the first path:line of the line (after ' at ', or a hit header's location)
  const m = /(?:^| |\()(\S*\/\S*?:\d+)/.exec(l);
  if (m && [...m[1]!].length - over - 1 >= 12) {
    const start = m.index + m[0].length - m[1]!.length;
    const path = m[1]!;
    const cut = ellipsize(path, cellWidth(path) - over, 'start');
    const fitted = l.slice(0, start) + cut + l.slice(start + path.length);
    if (cellWidth(fitted) <= width) return fitted;
  }
  return ellipsize(l, width, 'end');
}
