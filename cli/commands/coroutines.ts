// `nffi-inspect coroutines PID [--frames N] [--kind K] [--state S] [--wait W] [--request TEXT]
// [--all] [--plumbing PATTERN] [--all-frames] [--wide] [--json]`: every coroutine of every
// worker, by worker then id, at the first frame in application code (store/frames.ts).
import type { Command } from 'commander';
import { CoroutinesView, filterCoroutines, summarize, type CoroutineFilter } from '../../store/coroutines.js';
import { DEFAULT_PLUMBING, PLUMBING_ENV, plumbingRule, splitPatterns, type FrameRule } from '../../store/frames.js';
import { UsageError } from '../errors.js';
import { writeStyled } from '../format/escape.js';
import { formatCoroutines } from '../format/coroutines.js';
import { tableOptions } from '../format/table.js';
import { parseCount, parsePid, printJson, withClient, withProbeOptions, type ProbeOptions } from '../pid.js';

export interface FrameRuleOptions {
  plumbing: string[];
  allFrames?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...splitPatterns(value)];

/** --plumbing and --all-frames, for the commands that show a coroutine's frame in a row. */
export function withFrameRuleOptions(cmd: Command): Command {
  return cmd
    .option('--plumbing <PATTERN>', `a source glob to skip as plumbing, besides ${PLUMBING_ENV} or the defaults (${DEFAULT_PLUMBING.join(', ')}; C functions always); repeatable`, collect, [])
    .option('--all-frames', 'no plumbing rule: the top frame is the top frame, C functions too');
}

export function ruleFrom(opts: FrameRuleOptions): FrameRule {
  return plumbingRule({ extra: opts.plumbing, allFrames: opts.allFrames === true });
}

interface Options extends ProbeOptions, FrameRuleOptions {
  frames?: string;
  kind: string[];
  state: string[];
  wait: string[];
  request?: string;
  all?: boolean;
  wide?: boolean;
}

const KINDS = ['request', 'thread', 'timer', 'user'];
const STATES = ['running', 'suspended', 'normal', 'dead', 'pending', 'not started'];
const WAITS = ['ngx.sleep', 'cosocket', 'semaphore', 'ffi', 'thread.wait', 'subrequest', 'unknown', 'none'];

const list = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

function checked(values: string[], known: string[], what: string): string[] {
  const bad = values.filter((v) => !known.includes(v));
  if (bad.length) throw new UsageError(`unknown ${what} '${bad[0]}' (one of: ${known.join(', ')})`);
  return values;
}

export function registerCoroutines(program: Command): void {
  withProbeOptions(withFrameRuleOptions(program
    .command('coroutines')
    .description('list every coroutine of the workers (by worker, then id): kind, state, wait reason, request, and the first frame in application code')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--frames <N>', 'frames per coroutine from the first one in application code (text default 1, --json 3)')
    .option('--kind <K>', `only these kinds (${KINDS.join(', ')}); repeatable or comma-separated`, list, [])
    .option('--state <S>', `only these states (${STATES.join(', ')}); repeatable or comma-separated`, list, [])
    .option('--wait <W>', `only coroutines waiting in these (${WAITS.join(', ')}); repeatable or comma-separated`, list, [])
    .option('--request <TEXT>', 'only coroutines whose request (METHOD URI) contains TEXT (case-insensitive)')
    .option('--all', 'also list pending timers and dead (cached) light threads, hidden by default')
    .option('--wide', 'every column, nothing cut (default: fit the terminal, 80 columns when piped)')
    .option('--json', 'print JSON')))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const frames = opts.frames !== undefined ? parseCount(opts.frames, '--frames') : opts.json ? 3 : 1;
      const filter: CoroutineFilter = {
        kinds: checked(opts.kind, KINDS, 'kind'),
        states: checked(opts.state, STATES, 'state'),
        waits: checked(opts.wait, WAITS, 'wait'),
        ...(opts.request !== undefined ? { request: opts.request } : {}),
        ...(opts.all ? { all: true } : {}),
      };
      const rule = ruleFrom(opts);
      const got = await withClient(pid, opts, (c) => new CoroutinesView(c).refresh(frames, { rule, fromUser: true }));
      const workers = filterCoroutines(got, filter);
      if (opts.json) return printJson({ workers, summary: summarize(workers) });
      writeStyled(formatCoroutines(workers, { ...tableOptions(opts), frames: Math.max(1, frames), rule }) + '\n');
    });
}
