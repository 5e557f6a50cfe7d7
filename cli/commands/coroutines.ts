// `nffi-inspect coroutines PID [--frames N] [--json]`: every coroutine of every worker.
import type { Command } from 'commander';
import type { Lua } from '../../probe/protocol-types.js';
import { formatCoroutines, type CoroutineRow, type WorkerCoroutines } from '../format/coroutines.js';
import { writeTerm } from '../format/escape.js';
import { list, parseCount, parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  frames?: string;
}

export function coroutineRow(c: Lua.Coroutine): CoroutineRow {
  return {
    id: c.id,
    kind: c.kind,
    state: c.state,
    wait: c.wait ?? null,
    frames: list<Lua.Frame>(c.frames).map((f) => ({ function: f.function, source: f.source, line: f.line })),
    request: c.request ?? null,
  };
}

export function registerCoroutines(program: Command): void {
  withProbeOptions(program
    .command('coroutines')
    .description('list every coroutine of the workers: kind, state, wait reason, top frames')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--frames <N>', 'top frames per coroutine', '3')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const frames = parseCount(opts.frames ?? '3', '--frames');
      const results = await withSession(pid, opts, (s) => s.callAll('Lua.getCoroutines', { frames }));
      const workers: WorkerCoroutines[] = results.map((r) => ({
        pid: r.pid,
        coroutines: list<Lua.Coroutine>(r.result?.coroutines).map(coroutineRow),
        ...(r.error ? { error: r.error } : {}),
      }));
      if (opts.json) printJson({ workers });
      else writeTerm(formatCoroutines(workers) + '\n');
    });
}
