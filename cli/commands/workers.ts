// `nffi-inspect workers PID [--json]`: the attached workers, their agent's versions and JIT state.
import type { Command } from 'commander';
import type { Target } from '../../probe/protocol-types.js';
import { formatTable } from '../format/table.js';
import { parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

export interface WorkerInfo {
  pid: number;
  worker_id: number | null;
  user: string | null;
  versions: Target.TargetInfo['versions'] | null;
  jit: Target.TargetInfo['jit'] | null;
  error?: string;
}

function info(t: Target.TargetInfo): WorkerInfo {
  return {
    pid: t.pid, worker_id: t.worker_id ?? null, user: t.user ?? null,
    versions: t.versions ?? null, jit: t.jit ?? null, ...(t.error ? { error: t.error } : {}),
  };
}

function human(ws: WorkerInfo[]): string {
  const rows = ws.map((w) => [
    String(w.pid), w.worker_id === null ? '-' : String(w.worker_id), w.user ?? '-',
    w.versions?.nginx ?? '-', w.versions?.ngx_lua ?? '-', w.versions?.luajit ?? '-', w.versions?.agent ?? '-',
    w.jit ? `${w.jit.enabled ? 'on' : 'off'} ${w.jit.flags.join(' ')}`.trim() : '-',
  ]);
  const errors = ws.filter((w) => w.error).map((w) => `worker ${w.pid}: ${w.error}`);
  return [formatTable(['pid', 'id', 'user', 'nginx', 'ngx_lua', 'luajit', 'agent', 'jit'], rows), ...errors].join('\n');
}

export function registerWorkers(program: Command): void {
  withProbeOptions(program
    .command('workers')
    .description('list the workers of a master (or one worker): id, user, versions, JIT state')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: ProbeOptions) => {
      const targets = await withSession(parsePid(pidText), opts, async (s) => s.targets());
      const workers = targets.map(info);
      if (opts.json) printJson({ workers });
      else process.stdout.write(human(workers) + '\n');
    });
}
