// `nffi-inspect breakpoint PID FILE:LINE [if COND] [--count N] [--rate N/s] [--timeout DUR]
// [--log TEMPLATE] [--json]`: arm on every worker (through the running `serve` probe for PID
// when there is one, else in-process), print each hit as it comes, and remove the breakpoint on
// Ctrl-C, after N hits or at the timeout (default 10m); exit 0 then. --count is a total over
// all workers: exactly N hits are printed (probe/breakpoints.ts holds back later ones).
// A breakpoint on a master must reach every worker: one that could not be attached (held by
// another session, no agent) or that refused the spec is named on stderr, and the command
// removes the breakpoint and exits 1, unless --partial lets it go on with the others.
import type { Command } from 'commander';
import { openBreakpointHost } from '../../probe/breakpoint-host.js';
import type { BreakpointEvent, WorkerBreakpoint } from '../../probe/breakpoints.js';
import { whyNotReached } from '../../probe/holders.js';
import { readNginxProc, workersOf } from '../../probe/procs.js';
import { buildSpec, DEFAULT_TIMEOUT, type SpecOptions } from '../breakpoint-args.js';
import { CliError } from '../errors.js';
import { jsonLine, termText, writeTerm } from '../format/escape.js';
import { eventJson, formatEvent } from '../format/hit.js';
import { parsePid, sessionOptions, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions, SpecOptions {
  partial?: boolean;
}

/** Beyond the deadline the probe enforces, before the command gives up waiting for it. */
const GRACE_MS = 3_000;

function interrupted(): { promise: Promise<string>; dispose(): void } {
  let on: (() => void) | undefined;
  const promise = new Promise<string>((resolve) => {
    on = () => resolve('interrupted');
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', on!);
      process.off('SIGTERM', on!);
    },
  };
}

function printer(json: boolean): (e: BreakpointEvent) => void {
  return (e) => {
    if (json) {
      const o = eventJson(e);
      if (o) process.stdout.write(jsonLine(o) + '\n');
      return;
    }
    const text = formatEvent(e);
    if (text !== undefined) writeTerm(text + '\n');
  };
}

/** The workers of `pid` (a master: all of its serving workers) the breakpoint is not on: not
 * attached at all (with why), or refused (their error event was printed already). */
function missing(pid: number, workers: WorkerBreakpoint[], runDir?: string): { pid: number; why?: string }[] {
  const proc = readNginxProc(pid);
  const expected = proc?.role === 'master' ? workersOf(pid).map((w) => w.pid) : [pid];
  const seen = new Map(workers.map((w) => [w.pid, w]));
  const out: { pid: number; why?: string }[] = [];
  for (const p of expected.sort((a, b) => a - b)) {
    const w = seen.get(p);
    if (!w) out.push({ pid: p, why: whyNotReached(p, runDir ? [runDir] : []) });
    else if (w.state === 'failed') out.push({ pid: p });
  }
  return out;
}

export function registerBreakpoint(program: Command): void {
  withProbeOptions(program
    .command('breakpoint')
    .description('snapshot (or log) each time a Lua line runs, on every worker, without stopping it')
    .argument('<PID>', 'nginx master (all workers, also after a reload) or worker pid')
    .argument('<FILE:LINE>', 'path suffix of the chunk (handler.lua, app/handler.lua) or of an original source a loaded chunk\'s source map names (handler.ts), and line; or ffi:RUNTIME.METHOD (either part may be *) for FFI tasks on enqueue and resume')
    .argument('[if COND...]', "condition: if 'n > 3 and ctx.user == \"bob\"'")
    .option('--count <N>', 'remove after N hits in total (all workers)')
    .option('--rate <N/s>', 'at most N hits per second per worker (default 50/s)')
    .option('--timeout <DUR>', 'remove after this long', DEFAULT_TIMEOUT)
    .option('--log <TEMPLATE>', "a logpoint: print 'n={n} user={ctx.user}' instead of a snapshot")
    .option('--partial', 'go on when some workers could not be reached or refused the breakpoint (each is named on stderr); without it the command removes the breakpoint and exits 1')
    .option('--json', 'NDJSON: one line per hit, armed, removed, error, dropped'))
    .action(async (pidText: string, location: string, words: string[], opts: Options) => {
      const pid = parsePid(pidText);
      const spec = buildSpec(location, words ?? [], opts);
      const print = printer(Boolean(opts.json));
      const host = await openBreakpointHost(pid, sessionOptions(opts));
      const stop = interrupted();
      let timer: NodeJS.Timeout | undefined;
      try {
        let id: number | undefined;
        let hits = 0;
        const early: BreakpointEvent[] = [];
        let end!: (reason: string) => void;
        const ended = new Promise<string>((resolve) => (end = resolve));
        const onEvent = (e: BreakpointEvent): void => {
          if (id === undefined) return void early.push(e);
          if (e.id !== id) return;
          if (e.event === 'hit') hits++;
          if (e.event === 'ended') return end(e.reason);
          print(e);
        };
        host.onEvent(onEvent);
        let workers: WorkerBreakpoint[];
        try {
          ({ id, workers } = await host.set(spec));
        } catch (err) {
          throw new CliError(`${location}: ${(err as Error).message}`);
        }
        early.splice(0).forEach(onEvent);
        const lost = missing(pid, workers, opts.runDir);
        for (const m of lost.filter((x) => x.why)) {
          if (opts.json) process.stdout.write(jsonLine({ event: 'error', id, pid: m.pid, message: m.why }) + '\n');
          process.stderr.write(termText(`nffi-inspect: bp ${id} not set on worker ${m.pid}: ${m.why}`) + '\n');
        }
        if (lost.length && !opts.partial) {
          await host.remove(id);
          throw new CliError(`bp ${id} removed: not set on ${lost.length === 1 ? 'worker' : 'workers'} ${lost.map((m) => m.pid).join(', ')} (--partial goes on with the others)`);
        }
        timer = setTimeout(() => end('timeout'), spec.timeout_ms! + GRACE_MS);
        const why = await Promise.race([ended, stop.promise]);
        await host.remove(id);
        if (why === 'serve probe gone') throw new CliError(`bp ${id}: the serve probe went away`);
        // The session ended under it: no worker is left to hit it, and none will come.
        if (/ exited$| is shutting down$/.test(why)) throw new CliError(`bp ${id} ended after ${hits} hit${hits === 1 ? '' : 's'}: ${why}`);
        if (why === 'error') throw new CliError(`bp ${id} removed: its condition or log template failed in every worker`);
        if (!opts.json) writeTerm(`bp ${id} ended (${why}) after ${hits} hit${hits === 1 ? '' : 's'}\n`);
      } finally {
        if (timer) clearTimeout(timer);
        stop.dispose();
        await host.close();
      }
    });
}
