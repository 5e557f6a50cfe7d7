// Runs wrk (Debian's) against a URL and returns requests/s and errors.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkResult { rps: number; requests: number; errors: number }

export async function wrk(url: string, opts: { seconds: number; connections: number; threads?: number }): Promise<WrkResult> {
  const args = [`-t${opts.threads ?? 1}`, `-c${opts.connections}`, `-d${opts.seconds}s`, url];
  const { stdout } = await run('wrk', args, { timeout: (opts.seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, n) => a + Number(n), 0) : 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk printed no Requests/sec:\n${stdout}`);
  return { rps, requests, errors };
}
