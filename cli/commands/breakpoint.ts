// `nffi-inspect breakpoint PID FILE:LINE [if COND] [--count N] [--rate N/s] [--timeout DUR]
// [--log TEMPLATE] [--json]`: arm on every worker (through the running `serve` probe for PID
// when there is one, else in-process), print each hit as it comes, and remove the breakpoint on
// Ctrl-C, after N hits or at the timeout (default 10m); exit 0 then. --count is a total over
// all workers: exactly N hits are printed (probe/breakpoints.ts holds back later ones).
// A breakpoint on a master must reach every worker: one that could not be attached (held by
// another session, no agent) or that refused the spec is named on stderr, and the command
// removes the breakpoint and exits 1, unless --partial lets it go on with the others.
// A condition or log template that reads a name the line cannot see is refused when the
// breakpoint arms (one line on stderr, exit 1; a pending one when its file loads). Errors go to
// stderr; so do warnings about what the spec will meet (FILE matches no loaded chunk yet: the
// nearest loaded names; ffi:RUNTIME names no loaded runtime), once per breakpoint.
import type { Command } from 'commander';
import type { BreakpointEvent } from '../../client/client.js';
import { connect } from '../../client/connect.js';
import { HitsView, type Followed } from '../../store/hits.js';
import { buildSpec, DEFAULT_TIMEOUT, type SpecOptions } from '../breakpoint-args.js';
import { CliError } from '../errors.js';
import { jsonLine, termText, writeTerm } from '../format/escape.js';
import { eventJson, formatEvent, specWarnings } from '../format/hit.js';
import { fitLines } from '../format/stack.js';
import { outputWidth } from '../format/table.js';
import { clientOptions, interrupted, parsePid, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions, SpecOptions {
  partial?: boolean;
  wide?: boolean;
}

/** Beyond the deadline the probe enforces, before the command gives up waiting for it. */
const GRACE_MS = 3_000;

/** A pending breakpoint refused as its file loaded: the breakpoint ends with this message. */
const refusedOnArm = (e: BreakpointEvent): string | undefined =>
  e.event === 'error' && /^(condition|log template): unknown name /.test(e.message) ? e.message : undefined;

function printer(json: boolean, refused: { message?: string }, width: number | undefined): (e: BreakpointEvent) => void {
  return (e) => {
    const refusal = refusedOnArm(e);
    if (refusal) refused.message ??= refusal;
    if (json) {
      const o = eventJson(e);
      if (o) process.stdout.write(jsonLine(o) + '\n');
      return;
    }
    const text = formatEvent(e);
    if (text === undefined || refusal) return; // said once, as the command ends
    if (e.event === 'error') process.stderr.write(text + '\n');
    // a hit's block fits the output like the tables (80 columns piped; --wide: as it is)
    else writeTerm((e.event === 'hit' ? fitLines(text, width) : text) + '\n');
  };
}

/** Name each worker the breakpoint did not reach; without --partial, take it off the others. */
async function checkReach(bp: Followed, hits: HitsView, opts: Options): Promise<void> {
  for (const m of bp.unreached.filter((x) => x.why)) {
    if (opts.json) process.stdout.write(jsonLine({ event: 'error', id: bp.id, pid: m.pid, message: m.why }) + '\n');
    process.stderr.write(termText(`nffi-inspect: bp ${bp.id} not set on worker ${m.pid}: ${m.why}`) + '\n');
  }
  if (bp.unreached.length === 0 || opts.partial) return;
  await hits.remove(bp.id);
  const pids = bp.unreached.map((m) => m.pid);
  throw new CliError(`bp ${bp.id} removed: not set on ${pids.length === 1 ? 'worker' : 'workers'} ${pids.join(', ')} (--partial goes on with the others)`);
}

/** What the end of the breakpoint means for the exit status and the last line. */
function finish(id: number, why: string, hits: number, json: boolean, refused?: string): void {
  const n = `${hits} hit${hits === 1 ? '' : 's'}`;
  if (why === 'serve probe gone') throw new CliError(`bp ${id}: the serve probe went away`);
  // The session ended under it: no worker is left to hit it, and none will come.
  if (/ exited$| is shutting down$/.test(why)) throw new CliError(`bp ${id} ended after ${n}: ${why}`);
  if (why === 'error' && refused) throw new CliError(refused);
  if (why === 'error') throw new CliError(`bp ${id} removed: its condition or log template failed in every worker`);
  if (!json) writeTerm(`bp ${id} ended (${why}) after ${n}\n`);
}

export function registerBreakpoint(program: Command): void {
  withProbeOptions(program
    .command('breakpoint')
    .description('snapshot (or log) each time a Lua line runs, on every worker, without stopping it')
    .argument('<PID>', 'nginx master (all workers, also after a reload) or worker pid')
    .argument('<FILE:LINE>', 'path suffix of the chunk (handler.lua, app/handler.lua) or of an original source a loaded chunk\'s source map names (handler.ts), and line; or ffi:RUNTIME.METHOD (either part may be *) for FFI tasks on enqueue and resume')
    .argument('[if COND...]', "condition over the line's locals and upvalues, ngx.var.NAME and ngx.ctx.KEY: if 'n > 3 and ngx.ctx.user == \"bob\"'")
    .option('--count <N>', 'remove after N hits in total (all workers)')
    .option('--rate <N/s>', 'at most N hits per second per worker (default 50/s)')
    .option('--timeout <DUR>', 'remove after this long', DEFAULT_TIMEOUT)
    .option('--log <TEMPLATE>', "a logpoint: print 'n={n} uri={ngx.var.uri}' instead of a snapshot")
    .option('--partial', 'go on when some workers could not be reached or refused the breakpoint (each is named on stderr); without it the command removes the breakpoint and exits 1')
    .option('--wide', 'hit lines as long as they are (default: cut to the terminal, 80 columns when piped)')
    .option('--json', 'NDJSON: one line per hit, armed, removed, error, dropped'))
    .action(async (pidText: string, location: string, words: string[], opts: Options) => {
      const pid = parsePid(pidText);
      const spec = buildSpec(location, words ?? [], opts);
      const client = await connect(pid, clientOptions(opts));
      const hits = new HitsView(client);
      const stop = interrupted();
      let timer: NodeJS.Timeout | undefined;
      const refused: { message?: string } = {};
      try {
        const bp = await hits.set(spec, printer(Boolean(opts.json), refused, outputWidth({ wide: opts.wide }))).catch((err: Error & { code?: string }) => {
          if (err.code === 'ELSEWHERE') throw err;
          // "condition: unknown name 'x' at FILE:LINE (...)" names the line itself
          throw new CliError(/^(condition|log template): /.test(err.message) ? err.message : `${location}: ${err.message}`);
        });
        for (const w of specWarnings(spec, bp.workers)) process.stderr.write(`nffi-inspect: ${w}\n`);
        await checkReach(bp, hits, opts);
        const deadline = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), spec.timeout_ms! + GRACE_MS)));
        const why = await Promise.race([hits.ended(bp.id), stop.promise, deadline]);
        await hits.remove(bp.id);
        finish(bp.id, why, hits.get(bp.id)?.hits ?? 0, Boolean(opts.json), refused.message);
      } finally {
        if (timer) clearTimeout(timer);
        stop.dispose();
        hits.dispose();
        await client.close();
      }
    });
}
