// `nffi-inspect serve PID [--port N]`: keep one probe session and serve the CDP-style endpoint
// on 127.0.0.1 so several front ends share it. Runs until Ctrl-C / SIGTERM, then detaches.
import type { Command } from 'commander';
import { readNginxProc } from '../../probe/procs.js';
import { removeEntry, writeEntry } from '../../probe/registry.js';
import { defaultRunDir } from '../../probe/run-dir.js';
import { serveSession } from '../../probe/serve-http.js';
import { Session } from '../../probe/session.js';
import { parseCount, parsePid, sessionOptions, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  port?: string;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function registerServe(program: Command): void {
  withProbeOptions(program
    .command('serve')
    .description('keep a probe session and serve the CDP-style endpoint on 127.0.0.1')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--port <N>', 'port on 127.0.0.1 (default: any free port)', '0'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const port = parseCount(opts.port ?? '0', '--port');
      const session = await Session.open(pid, sessionOptions(opts));
      let registry: string | undefined;
      let stopping = false;
      try {
        const server = await serveSession(session, port);
        const first = session.targets()[0];
        const worker = first ? readNginxProc(first.pid) : undefined;
        const dir = opts.runDir ?? (worker ? defaultRunDir(worker.uid) : undefined);
        const register = (): void => {
          if (!dir || stopping) return;
          const workers = session.targets().filter((t) => t.attached).map((t) => t.pid);
          registry = writeEntry(dir, { probe_pid: process.pid, port: server.port, pid, workers }, worker);
        };
        register();
        session.onTargetEvent(() => register());
        const pids = session.targets().filter((t) => t.attached).map((t) => t.pid).join(', ');
        process.stdout.write(`serving ${pid} (workers ${pids}) on http://127.0.0.1:${server.port}/json/list\n`);
        await untilSignal();
        await server.close();
      } finally {
        // Detaching fires target events: stop re-registering first, remove the entry last.
        stopping = true;
        await session.close();
        if (registry) removeEntry(registry);
      }
    });
}
