// `nffi-inspect tasks PID [--older-than DUR] [--json]`: pending nffi tasks and who waits on them.
import type { Command } from 'commander';
import type { FFI } from '../../probe/protocol-types.js';
import { parseDuration } from '../duration.js';
import { formatTasks, type TaskRow, type WorkerTasks } from '../format/tasks.js';
import { list, parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  olderThan?: string;
}

type Frames = TaskRow['coroutine'];

function coroutineOf(t: FFI.Task): Frames {
  const c = t.coroutine as { id?: number; frames?: { function: string; source: string; line: number }[] } | undefined;
  if (!c || typeof c.id !== 'number') return null;
  return { id: c.id, frames: list<{ function: string; source: string; line: number }>(c.frames).map((f) => ({ function: f.function, source: f.source, line: f.line })) };
}

export function taskRow(t: FFI.Task): TaskRow {
  return {
    id: t.id, runtime: t.runtime, method: t.method, state: t.state, age_ms: t.age_ms,
    req_len: t.req_len, req_preview: t.req_preview, coroutine: coroutineOf(t),
  };
}

export function registerTasks(program: Command): void {
  withProbeOptions(program
    .command('tasks')
    .description('list pending nffi tasks with the Lua stack of each waiting coroutine')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--older-than <DUR>', 'only tasks older than DUR (e.g. 100ms, 2s, 1m)')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const params = opts.olderThan !== undefined ? { older_than_ms: parseDuration(opts.olderThan, '--older-than') } : {};
      const results = await withSession(pid, opts, (s) => s.callAll('FFI.getTasks', params));
      const workers: WorkerTasks[] = results.map((r) => ({
        pid: r.pid,
        tasks: list<FFI.Task>(r.result?.tasks).map(taskRow),
        ...(r.error ? { error: r.error } : {}),
      }));
      if (opts.json) printJson({ workers });
      else process.stdout.write(formatTasks(workers) + '\n');
    });
}
