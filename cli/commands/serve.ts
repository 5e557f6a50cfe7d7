// `nffi-inspect serve PID [--port N] [--host ADDR] [--allow-origin ORIGIN]`: keep one probe
// session and serve the CDP-style endpoint so several front ends share it. By default on a unix
// socket in this user's private run dir (0700): only this user (and root) can open it. --port or
// --host serve TCP instead. Either way every request needs the token (printed once here, kept
// 0600 in the registry entry beside the socket) and a Host naming the endpoint; a browser
// Origin only if --allow-origin lists it (probe/serve-auth.ts). Runs until Ctrl-C / SIGTERM,
// then detaches; or until its nginx exits (then it says so and exits 1).
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { entryPath, removeEntry, serveDir, socketPath, sweepDead, writeEntry, type ServeEntry } from '../../probe/registry.js';
import { ensureRunDir } from '../../probe/run-dir.js';
import { isLoopback, newToken, type Listen } from '../../probe/serve-auth.js';
import { serveSession } from '../../probe/serve-http.js';
import { Session } from '../../probe/session.js';
import { CliError, UsageError } from '../errors.js';
import { parseCount, parsePid, sessionOptions, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  port?: string;
  host?: string;
  allowOrigin: string[];
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

/** The endpoint the options ask for; the unix socket unless --port or --host. */
function listenOf(opts: Options, dir: string): Listen {
  if (opts.port === undefined && opts.host === undefined) return { socket: socketPath(dir) };
  const host = opts.host === undefined || opts.host === 'localhost' ? '127.0.0.1' : opts.host;
  if (!isIP(host)) throw new UsageError(`invalid --host '${opts.host}' (an IP address, or localhost)`);
  const port = parseCount(opts.port ?? '0', '--port');
  if (port > 65535) throw new UsageError(`invalid --port '${opts.port}' (0 to 65535)`);
  return { host, port };
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').filter(Boolean)];

export function registerServe(program: Command): void {
  withProbeOptions(program
    .command('serve')
    .description('keep a probe session and serve the CDP-style endpoint (a unix socket only you can open; TCP with --port/--host), token required')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--port <N>', 'serve TCP on this port instead of the unix socket (0: any free port)')
    .option('--host <ADDR>', 'serve TCP on this IP address (default with --port: 127.0.0.1)')
    .option('--allow-origin <ORIGIN>', 'let browser pages from ORIGIN in (repeatable, or comma-separated; * for any)', collect, []))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const euid = process.geteuid?.() ?? 0;
      const dir = ensureRunDir(serveDir(), euid, process.getegid?.() ?? 0);
      // what a serve killed with -9 left behind
      sweepDead(dir);
      const listen = listenOf(opts, dir);
      const token = newToken();
      const session = await Session.open(pid, sessionOptions(opts));
      let registry: string | undefined;
      let stopping = false;
      try {
        const server = await serveSession(session, { listen, token, allowOrigins: opts.allowOrigin });
        const bound = server.listen;
        const register = (): void => {
          if (stopping) return;
          const workers = session.targets().filter((t) => t.attached).map((t) => t.pid);
          const entry: ServeEntry = { probe_pid: process.pid, pid, workers, ...bound, token };
          registry = writeEntry(dir, entry);
        };
        register();
        session.onTargetEvent(() => register());
        const pids = session.targets().filter((t) => t.attached).map((t) => t.pid).join(', ');
        const at = 'socket' in bound
          ? `unix:${bound.socket} (token in ${entryPath(dir)})`
          : `http://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}/json/list?token=${token}`;
        process.stdout.write(`serving ${pid} (workers ${pids}) on ${at}\n`);
        if ('host' in bound && !isLoopback(bound.host)) {
          process.stderr.write(`nffi-inspect: warning: ${bound.host} is reachable from other hosts; the token travels in clear text over HTTP\n`);
        }
        const ended = new Promise<string>((resolve) => session.onEnd(resolve));
        const why = await Promise.race([untilSignal(), ended]);
        // the front ends get each breakpoint's end, with why, before the close
        if (session.ended !== undefined) await server.breakpoints.clear(session.ended);
        await server.close(session.ended);
        if (session.ended !== undefined) throw new CliError(`serve ${pid} ended: ${why}`);
      } finally {
        // Detaching fires target events: stop re-registering first, remove the entry last.
        stopping = true;
        await session.close();
        if (registry) removeEntry(registry);
      }
    });
}
