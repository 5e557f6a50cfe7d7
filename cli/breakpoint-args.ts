// The words of `breakpoint FILE:LINE [if COND] [--count N] [--rate N/s] [--timeout DUR]
// [--log TEMPLATE]`, shared by the CLI command and (later) the TUI command line. FILE may hold
// ':' itself (=content_by_lua(nginx.conf:40):3), so the line is after the last ':'. COND is
// everything after the word `if`, given as one quoted argument or as several words.
import type { Debugger } from '../probe/protocol-types.js';
import { parseDuration } from './duration.js';
import { UsageError } from './errors.js';

export interface Location {
  url: string;
  line?: number;
}

export function parseLocation(text: string): Location {
  if (/^ffi:/.test(text)) {
    // ffi:RUNTIME.METHOD, either part `*` (or a glob); the method is after the last '.'
    if (!/^ffi:[^.\s]+(?:\.[^.\s]+)*\.[^.\s]+$/.test(text)) {
      throw new UsageError(`invalid task breakpoint '${text}' (expected ffi:RUNTIME.METHOD, e.g. ffi:echo.* or ffi:*.*)`);
    }
    return { url: text };
  }
  const at = text.lastIndexOf(':');
  const url = at > 0 ? text.slice(0, at) : '';
  const line = at > 0 ? text.slice(at + 1) : '';
  if (!url || !/^\d+$/.test(line) || Number(line) < 1) {
    throw new UsageError(`invalid location '${text}' (expected FILE:LINE, e.g. app/handler.lua:42)`);
  }
  return { url, line: Number(line) };
}

/** The condition of `[if COND...]`, or undefined when there are no words. */
export function parseCondition(words: string[]): string | undefined {
  if (words.length === 0) return undefined;
  const [first, ...rest] = words as [string, ...string[]];
  let cond: string;
  if (first === 'if') cond = rest.join(' ');
  else if (/^if\s/.test(first)) cond = [first.replace(/^if\s+/, ''), ...rest].join(' ');
  else throw new UsageError(`unexpected '${first}' after the location (a condition starts with 'if')`);
  cond = cond.trim();
  if (!cond) throw new UsageError("'if' needs a condition, e.g. if 'n > 3'");
  return cond;
}

/** Hits per second: `10/s`, `10` (per second) or `600/m`. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:\/\s*(s|m))?$/.exec(text.trim());
  const n = m ? Number(m[1]) / (m[2] === 'm' ? 60 : 1) : NaN;
  if (!(n > 0)) throw new UsageError(`invalid --rate '${text}' (expected hits per second, e.g. 10/s)`);
  return n;
}

export interface SpecOptions {
  count?: string;
  rate?: string;
  timeout?: string;
  log?: string;
}

export const DEFAULT_TIMEOUT = '10m';

/** The Debugger.BreakpointSpec for `LOCATION [if COND...]` and the options. */
export function buildSpec(location: string, words: string[], opts: SpecOptions): Debugger.BreakpointSpec {
  const spec: Debugger.BreakpointSpec = { ...parseLocation(location) };
  const condition = parseCondition(words);
  if (condition !== undefined) spec.condition = condition;
  if (opts.log !== undefined) {
    if (!opts.log.trim()) throw new UsageError('--log needs a template, e.g. --log "n={n}"');
    spec.log = opts.log;
  }
  if (opts.count !== undefined) {
    if (!/^\d+$/.test(opts.count) || Number(opts.count) < 1) throw new UsageError(`invalid --count '${opts.count}' (expected a whole number ≥ 1)`);
    spec.count = Number(opts.count);
  }
  if (opts.rate !== undefined) spec.rate = parseRate(opts.rate);
  const timeout = parseDuration(opts.timeout ?? DEFAULT_TIMEOUT, '--timeout');
  if (!(timeout >= 1)) throw new UsageError('--timeout must be at least 1ms');
  spec.timeout_ms = Math.round(timeout);
  return spec;
}
