// The `:` command line of `attach`: the CLI's words inside the TUI.
//   breakpoint FILE:LINE [if COND] [--log T] [--count N] [--rate N/s] [--timeout DUR]
//   breakpoint ffi:RUNTIME.METHOD [if COND] …   delete ID…   breakpoints
//   stack CO [WORKER]   locals CO FRAME [WORKER]   threshold depth|p99 WARN BAD
//   refresh DUR   detach (also quit)   help
// A command answers with a line for the status line or throws (the shell shows the error
// there). Quotes group words ('…' or "…"; inside them \" or \' is the quote and \\ a backslash);
// the condition after `if` is kept as typed, quotes included, up to the first --option (a word
// that starts with --, unquoted: `if uri == "--rate"` is a condition).
import { buildSpec } from '../cli/breakpoint-args.js';
import { parseDuration } from '../cli/duration.js';
import { UsageError } from '../cli/errors.js';
import type { HitsView } from '../store/hits.js';
import { describe, thresholds, type QueueThresholds } from './thresholds.js';
import { clean } from './text.js';
import type { Completer } from './widgets/prompt.js';

export interface Token { text: string; start: number; end: number }

/** Words of `line`: whitespace separates, quotes group (and are removed; inside them a
 * backslash before the quote or another backslash gives that character, before anything else
 * it stays); each keeps its span (`line.slice(start, end)`: the word as typed). */
export function tokens(line: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    const start = i;
    let text = '';
    while (i < line.length && !/\s/.test(line[i]!)) {
      const q = line[i]!;
      if (q === '"' || q === '\'') {
        i++;
        for (;;) {
          if (i >= line.length) throw new UsageError(`unclosed ${q} in the command`);
          const c = line[i]!;
          if (c === q) break;
          if (c === '\\' && (line[i + 1] === q || line[i + 1] === '\\')) {
            text += line[i + 1];
            i += 2;
          } else {
            text += c;
            i++;
          }
        }
        i++;
      } else {
        text += q;
        i++;
      }
    }
    out.push({ text, start, end: i });
  }
  return out;
}

/** A word typed as an option (--name or --name=value, not quoted). */
const optionWord = (line: string, t: Token): boolean => line.startsWith('--', t.start);

export interface CommandHost {
  readonly hits: HitsView;
  /** Ids of the breakpoints this session set (q removes them). */
  readonly mine: Set<number>;
  /** The worker of coroutine `co` (given, or found among the sampled rows); throws when unsure. */
  workerOf(co: number, worker?: number): number;
  openStack(pid: number, co: number, frame?: number): void;
  thresholds: QueueThresholds;
  setThresholds(t: QueueThresholds): void;
  setRefresh(ms: number): string;
  quit(): void;
  help(): void;
  /** For completion. */
  sources(): string[];
  runtimes(): string[];
}

export const COMMANDS = ['breakpoint', 'breakpoints', 'delete', 'stack', 'locals', 'threshold', 'refresh', 'detach', 'help', 'quit'];
const ALIASES: Record<string, string> = { b: 'breakpoint', break: 'breakpoint', bp: 'breakpoint', d: 'delete', bps: 'breakpoints', q: 'quit', h: 'help' };
const SPEC_OPTIONS = new Set(['--log', '--count', '--rate', '--timeout']);

function whole(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new UsageError(`${what}: expected a whole number${text !== undefined ? `, not '${text}'` : ''}`);
  return Number(text);
}

/** `breakpoint` after its name: the spec, from the raw line (the condition keeps its quotes). */
export function breakpointSpec(line: string, toks: Token[]) {
  const loc = toks[1];
  if (!loc) throw new UsageError('breakpoint FILE:LINE [if COND] [--log T] [--count N], or breakpoint ffi:RUNTIME.METHOD');
  const opts: Record<string, string> = {};
  let condStart = -1;
  let condEnd = line.length;
  for (let i = 2; i < toks.length; i++) {
    const t = toks[i]!;
    const [name, inline] = optionWord(line, t) ? t.text.split(/=(.*)/s, 2) as [string, string | undefined] : [undefined, undefined];
    if (name !== undefined && SPEC_OPTIONS.has(name)) {
      if (condStart >= 0 && condEnd === line.length) condEnd = t.start;
      const value = inline ?? toks[++i]?.text;
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      opts[name.slice(2)] = value;
    } else if (line.slice(t.start, t.end) === 'if' && condStart < 0) {
      if (i !== 2) throw new UsageError('the condition (if …) goes right after the location, before the options');
      condStart = t.end;
    } else if (condStart < 0) {
      throw new UsageError(`unexpected '${t.text}' after the location (a condition starts with 'if', options with --)`);
    } else if (condEnd !== line.length) {
      throw new UsageError(`unexpected '${t.text}' after the options (the condition goes before them)`);
    }
  }
  const words = condStart >= 0 ? ['if', line.slice(condStart, condEnd).trim()] : [];
  return buildSpec(loc.text, words, opts);
}

/** Run one command line; resolves with what to say on the status line. */
export async function runCommand(line: string, host: CommandHost): Promise<string> {
  const toks = tokens(line);
  const word = toks[0]?.text ?? '';
  const name = ALIASES[word] ?? word;
  const arg = (i: number) => toks[i]?.text;
  switch (name) {
    case 'breakpoint': {
      const spec = breakpointSpec(line, toks);
      const bp = await host.hits.set(spec);
      host.mine.add(bp.id);
      const where = spec.line !== undefined ? `${spec.url}:${spec.line}` : spec.url;
      const missed = bp.unreached.map((u) => `${u.pid}${u.why ? ` (${u.why})` : ''}`);
      const on = bp.workers.filter((w) => w.state !== 'failed' && w.state !== 'removed').length;
      return `bp ${bp.id} set at ${where} on ${on} worker${on === 1 ? '' : 's'}${missed.length ? `; not on ${missed.join(', ')}` : ''}`;
    }
    case 'delete': {
      if (toks.length < 2) throw new UsageError('delete ID [ID…]');
      const said: string[] = [];
      for (const t of toks.slice(1)) {
        const id = whole(t.text, 'delete');
        const gone = await host.hits.remove(id);
        host.mine.delete(id);
        said.push(gone ? `bp ${id} deleted` : `no breakpoint ${id}`);
      }
      return said.join('; ');
    }
    case 'breakpoints': {
      const bps = host.hits.state.breakpoints.filter((b) => b.ended === undefined);
      if (bps.length === 0) return 'no breakpoints';
      return bps.map((b) => `bp ${b.id} ${b.spec ? (b.spec.line !== undefined ? `${b.spec.url}:${b.spec.line}` : b.spec.url) : '?'} ${b.hits} hits`).join('; ');
    }
    case 'stack': case 'locals': {
      const usage = name === 'stack' ? 'stack CO [WORKER] (or WORKER:CO)' : 'locals CO FRAME [WORKER]';
      const first = arg(1);
      if (first === undefined) throw new UsageError(usage);
      const pair = /^(\d+):(\d+)$/.exec(first);
      const co = pair ? Number(pair[2]) : whole(first, usage);
      const frame = name === 'locals' ? whole(arg(2), usage) : undefined;
      const workerText = pair ? pair[1] : arg(name === 'locals' ? 3 : 2);
      const pid = host.workerOf(co, workerText === undefined ? undefined : whole(workerText, usage));
      host.openStack(pid, co, frame);
      return '';
    }
    case 'threshold': {
      const which = arg(1);
      if (which === undefined) return `thresholds: ${describe(host.thresholds)}`;
      if (which !== 'depth' && which !== 'p99') throw new UsageError('threshold depth WARN BAD, or threshold p99 WARN BAD (durations: 5ms, 1s)');
      const read = (t: string | undefined) => (which === 'depth' ? whole(t, `threshold ${which}`) : parseDuration(t ?? '', `threshold ${which}`));
      const warn = read(arg(2));
      const bad = arg(3) === undefined ? Math.max(warn, which === 'depth' ? host.thresholds.badDepth : host.thresholds.badP99) : read(arg(3));
      if (bad < warn) throw new UsageError(`threshold ${which}: BAD must not be below WARN`);
      const next = thresholds(which === 'depth' ? { ...host.thresholds, warnDepth: warn, badDepth: bad } : { ...host.thresholds, warnP99: warn, badP99: bad });
      host.setThresholds(next);
      return `thresholds: ${describe(next)}`;
    }
    case 'refresh': {
      const ms = parseDuration(arg(1) ?? '', 'refresh');
      return host.setRefresh(ms);
    }
    case 'detach': case 'quit':
      host.quit();
      return '';
    case 'help':
      host.help();
      return '';
    case '':
      return '';
    default:
      throw new UsageError(`unknown command '${word}' (${COMMANDS.join(', ')}; ? for keys)`);
  }
}

/** A chunk name completion may put on the command line as it is: nothing the screen would
 * escape (a control character, a bidi mark: the name is the worker's), no space, quote or
 * backslash (it would not come back as one word). Other names are not offered. */
const completable = (s: string): boolean => s.length > 0 && clean(s) === s && !/[\s"'\\]/.test(s);

/** Tab: command names, then for `breakpoint` file names seen in frames (and loaded chunks) or
 * ffi:RUNTIME., for `delete` the ids of live breakpoints. */
export function completer(host: CommandHost): Completer {
  return (text, cursor) => {
    const before = text.slice(0, cursor);
    const start = Math.max(before.lastIndexOf(' '), before.lastIndexOf('\t')) + 1;
    const word = before.slice(start);
    const prior = before.slice(0, start).trim().split(/\s+/).filter(Boolean);
    if (prior.length === 0) return { start, candidates: COMMANDS.filter((c) => c.startsWith(word)) };
    const cmd = ALIASES[prior[0]!] ?? prior[0]!;
    if (cmd === 'breakpoint' && prior.length === 1) {
      if (word.startsWith('ffi:')) {
        return { start, candidates: ['*', ...host.runtimes()].map((r) => `ffi:${r}.`).filter((c) => c.startsWith(word)) };
      }
      const base = (s: string) => s.slice(s.lastIndexOf('/') + 1);
      const files = [...new Set(host.sources())].filter((s) => completable(s) && (!s.startsWith('=') || word.startsWith('=')));
      const hits = files.filter((s) => s.startsWith(word) || base(s).startsWith(word));
      // typed a base name: complete to that name when it is unique, else to the paths
      const names = [...new Set(hits.map((s) => (s.startsWith(word) ? s : base(s))))];
      return { start, candidates: (names.length === 1 ? names.map((n) => `${n}:`) : names).sort() };
    }
    if (cmd === 'delete') {
      return { start, candidates: host.hits.state.breakpoints.filter((b) => b.ended === undefined).map((b) => String(b.id)).filter((c) => c.startsWith(word)) };
    }
    return undefined;
  };
}
