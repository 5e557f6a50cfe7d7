// `nffi-inspect serve PID [--port N] [--host ADDR] [--allow-origin ORIGIN] [--json]`: keep one probe
// session and serve the CDP-style endpoint so several front ends share it. By default on a unix
// socket in this user's private run dir (0700): only this user (and root) can open it. --port or
// --host serve TCP instead. Either way every request needs the token (printed once here, kept
// 0600 in the registry entry beside the socket) and a Host naming the endpoint; a browser
// Origin only if --allow-origin lists it (probe/serve-auth.ts). Runs until Ctrl-C / SIGTERM,
// then detaches; or until its nginx exits (then it says so and exits 1). --json: NDJSON, a
// `serving` line when it listens (the same facts, the token only where the text has it: in a
// TCP URL) and a `stopped` line when Ctrl-C ends it.
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { publish, serveHome, type Listen, type Published } from '../../client/endpoint.js';
import { CliError, UsageError } from '../errors.js';
import { jsonLine } from '../format/escape.js';
import { clientOptions, interrupted, parseCount, parsePid, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  port?: string;
  host?: string;
  allowOrigin: string[];
  json?: boolean;
}

/** The endpoint the options ask for; the unix socket unless --port or --host. */
function listenOf(opts: Options, socket: string): Listen {
  if (opts.port === undefined && opts.host === undefined) return { socket };
  const host = opts.host === undefined || opts.host === 'localhost' ? '127.0.0.1' : opts.host;
  if (!isIP(host)) throw new UsageError(`invalid --host '${opts.host}' (an IP address, or localhost)`);
  const port = parseCount(opts.port ?? '0', '--port');
  if (port > 65535) throw new UsageError(`invalid --port '${opts.port}' (0 to 65535)`);
  return { host, port };
}

/** `unix:PATH (token in ENTRY)`, or the TCP URL with its token (printed once, here). */
function where(p: Published): string {
  const l = p.listen;
  if ('socket' in l) return `unix:${l.socket} (token in ${p.entryPath})`;
  return `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}/json/list?token=${p.token}`;
}

/** The serving line of --json. */
function servingJson(pid: number, p: Published): Record<string, unknown> {
  const l = p.listen;
  const at = 'socket' in l ? { socket: l.socket, entry: p.entryPath } : { host: l.host, port: l.port, url: where(p) };
  return { event: 'serving', pid, workers: p.workers(), ...at, probe: process.pid };
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').filter(Boolean)];

export function registerServe(program: Command): void {
  withProbeOptions(program
    .command('serve')
    .description('keep a probe session and serve the CDP-style endpoint (a unix socket only you can open; TCP with --port/--host), token required')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--port <N>', 'serve TCP on this port instead of the unix socket (0: any free port)')
    .option('--host <ADDR>', 'serve TCP on this IP address (default with --port: 127.0.0.1)')
    .option('--allow-origin <ORIGIN>', 'let browser pages from ORIGIN in (repeatable, or comma-separated; * for any)', collect, [])
    .option('--json', 'print NDJSON: {"event":"serving",...} when it listens, {"event":"stopped"} at Ctrl-C'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const listen = listenOf(opts, serveHome().socket);
      const served = await publish(pid, listen, { ...clientOptions(opts), allowOrigins: opts.allowOrigin });
      const stop = interrupted();
      try {
        if (opts.json) process.stdout.write(jsonLine(servingJson(pid, served)) + '\n');
        else process.stdout.write(`serving ${pid} (workers ${served.workers().join(', ')}) on ${where(served)}\n`);
        if (served.exposed && 'host' in served.listen) {
          process.stderr.write(`nffi-inspect: warning: ${served.listen.host} is reachable from other hosts; the token travels in clear text over HTTP\n`);
        }
        await Promise.race([stop.promise, new Promise<string>((resolve) => served.onEnd(resolve))]);
      } finally {
        stop.dispose();
        await served.stop();
      }
      if (served.ended !== undefined) throw new CliError(`serve ${pid} ended: ${served.ended}`);
      if (opts.json) process.stdout.write(jsonLine({ event: 'stopped', pid }) + '\n');
    });
}
