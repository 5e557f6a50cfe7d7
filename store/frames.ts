// Which frame of a stack is the application's: the one rule every view uses to pick the frame
// a coroutine or a task "is at". A waiting coroutine's top frames are plumbing: the C function
// it yields in (co_yield, receiveany, sleep), then lua-resty-core (ngx/semaphore.lua), then
// nffi's own call path (nffi/call.lua). The operator wants the line below all that:
// demo_app.lua:41, where the handler called rt:fetch().
//
// The first frame in application code is the first frame that is
//   - not a C function (what "C", source "=[C]"), and
//   - not from a source matching one of the plumbing patterns below.
// The patterns are globs matched against the chunk name (without its leading @ or =):
// `*` any characters but `/`, `**` anything, `?` one character; a pattern matches at the start of
// the name or after any `/` (as in .gitignore), so `ngx/*.lua` matches
// /usr/share/lua/5.1/ngx/semaphore.lua.
//
// Overriding, in one place (plumbingRule):
//   NFFI_INSPECT_PLUMBING="p1,p2"   replaces the default patterns ("" keeps only the C rule);
//   NFFI_INSPECT_PLUMBING="+p1,p2"  adds to them;
//   --plumbing PATTERN               adds to whatever the environment says (repeatable, commas);
//   --all-frames                     no rule: the top frame is the top frame.

/** What the rule reads of a frame (Lua.Frame, Lua.StackFrame and the store's rows have it). */
export interface RuleFrame {
  source: string;
  line: number;
  what?: string;
}

/** lua-resty-core, lua-resty-lock and nffi itself: the code between a handler and its wait. */
export const DEFAULT_PLUMBING: readonly string[] = [
  'nffi/**', // the nffi binding and its inspector agent (lua/nffi/…)
  'nffi.lua',
  'nffi.*', // chunks loaded by name (nffi.call, …)
  'resty/core.lua',
  'resty/core/**', // lua-resty-core's FFI wrappers of ngx.* (resty/core/base.lua, …)
  'resty/*lock*.lua', // lua-resty-lock
  'ngx/*.lua', // lua-resty-core's ngx.* modules (ngx/semaphore.lua, ngx/process.lua, …)
];

export const PLUMBING_ENV = 'NFFI_INSPECT_PLUMBING';

export interface FrameRule {
  /** The patterns in effect (for --help, --json and error messages). */
  readonly patterns: readonly string[];
  /** No rule at all: the user frame is the top frame. */
  readonly allFrames: boolean;
  /** The patterns as one expression; undefined when there are none. */
  readonly re: RegExp | undefined;
}

/** A glob as described above, as the body of a regular expression (no anchors). */
export function globSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (glob.startsWith('**/', i)) {
      out += '(?:.*/)?';
      i += 2;
    } else if (glob.startsWith('**', i)) {
      out += '.*';
      i += 1;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return out;
}

function compile(patterns: readonly string[]): RegExp | undefined {
  const parts = patterns.map((p) => p.trim()).filter(Boolean).map((p) => globSource(p.replace(/^[@=]/, '')));
  return parts.length ? new RegExp(`(?:^|/)(?:${parts.join('|')})$`) : undefined;
}

/** Comma-separated patterns, blanks dropped. */
export const splitPatterns = (text: string): string[] => text.split(',').map((s) => s.trim()).filter(Boolean);

export interface RuleOptions {
  /** NFFI_INSPECT_PLUMBING's value (default: process.env's). */
  env?: string | undefined;
  /** --plumbing patterns: added to the list in effect. */
  extra?: readonly string[];
  /** --all-frames. */
  allFrames?: boolean;
}

/** The rule from the defaults, the environment and the command line. */
export function plumbingRule(opts: RuleOptions = {}): FrameRule {
  const env = 'env' in opts ? opts.env : process.env[PLUMBING_ENV];
  let patterns: string[] = [...DEFAULT_PLUMBING];
  if (env !== undefined) patterns = env.startsWith('+') ? [...patterns, ...splitPatterns(env.slice(1))] : splitPatterns(env);
  patterns.push(...(opts.extra ?? []).flatMap(splitPatterns));
  return { patterns, allFrames: opts.allFrames === true, re: compile(patterns) };
}

let defaultRule: FrameRule | undefined;

/** The rule from the defaults and NFFI_INSPECT_PLUMBING, built once. */
export function defaultFrameRule(): FrameRule {
  return (defaultRule ??= plumbingRule());
}

/** A C function: what "C", or the chunk name LuaJIT gives them. */
export const isCFrame = (f: RuleFrame): boolean => f.what === 'C' || f.source === '=[C]';

/** Not application code: a C function, or a source the patterns name. */
export function isPlumbing(f: RuleFrame, rule: FrameRule = defaultFrameRule()): boolean {
  if (isCFrame(f)) return true;
  return rule.re !== undefined && rule.re.test(f.source.replace(/^[@=]/, ''));
}

/** The index of the first frame in application code; -1 when none of `frames` is (or there
 * are none). With allFrames: 0 for any stack. */
export function userFrameIndex(frames: readonly RuleFrame[], rule: FrameRule = defaultFrameRule()): number {
  if (rule.allFrames) return frames.length ? 0 : -1;
  return frames.findIndex((f) => !isPlumbing(f, rule));
}

/** The frame a one-line view shows: the application's, else the first Lua frame, else the
 * top one; -1 for no frames. */
export function shownFrameIndex(frames: readonly RuleFrame[], rule: FrameRule = defaultFrameRule()): number {
  const user = userFrameIndex(frames, rule);
  if (user >= 0) return user;
  const lua = frames.findIndex((f) => !isCFrame(f));
  return lua >= 0 ? lua : frames.length ? 0 : -1;
}

/** The frame a one-line view shows (shownFrameIndex), or undefined. */
export function shownFrame<F extends RuleFrame>(frames: readonly F[], rule: FrameRule = defaultFrameRule()): F | undefined {
  const i = shownFrameIndex(frames, rule);
  return i >= 0 ? frames[i] : undefined;
}

/** Up to `n` frames from the shown one down (toward the bottom of the stack). */
export function framesFromShown<F extends RuleFrame>(frames: readonly F[], n: number, rule: FrameRule = defaultFrameRule()): F[] {
  const i = shownFrameIndex(frames, rule);
  return i < 0 ? [] : frames.slice(i, i + n);
}

/** Frames to ask the agent for so that `n` frames below the user's can be shown: plumbing above
 * it is rarely deeper than this (co_yield, semaphore.wait, nffi's wait_ready and method stub). */
export const PLUMBING_DEPTH = 12;
/** The agent's own limit per coroutine (Lua.getCoroutines). */
export const AGENT_MAX_FRAMES = 50;

export function framesToAsk(n: number, rule: FrameRule = defaultFrameRule()): number {
  return Math.min(AGENT_MAX_FRAMES, Math.max(1, rule.allFrames ? n : n + PLUMBING_DEPTH));
}
