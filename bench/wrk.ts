// Runs wrk (Debian's) against a URL and returns requests/s and errors.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkResult {
  rps: number; requests: number; errors: number;
  /** what the errors were: wrk's socket error counts and non-2xx responses */
  errorDetail: string;
}

export interface WrkOptions {
  seconds: number;
  connections: number;
  threads?: number;
  /** Run wrk on this CPU only (taskset), away from a pinned nginx worker. */
  cpu?: number;
}

export async function wrk(url: string, opts: WrkOptions): Promise<WrkResult> {
  const args = [`-t${opts.threads ?? 1}`, `-c${opts.connections}`, `-d${opts.seconds}s`, url];
  const [cmd, argv] = opts.cpu === undefined ? ['wrk', args] : ['taskset', ['-c', String(opts.cpu), 'wrk', ...args]];
  const { stdout } = await run(cmd, argv, { timeout: (opts.seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, n) => a + Number(n), 0) : 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk printed no Requests/sec:\n${stdout}`);
  const errorDetail = `${socketErrors?.[0] ?? 'no socket errors'}, non-2xx/3xx ${non2xx}`;
  return { rps, requests, errors, errorDetail };
}
