// Shared bits of the commands that talk to workers: the PID argument, --run-dir, a client held
// for the duration of one command (client/connect.ts decides which), JSON output.
import type { Command } from 'commander';
import type { ProbeClient } from '../client/client.js';
import { withClient as connected, type ConnectOptions } from '../client/connect.js';
import { UsageError } from './errors.js';
import { jsonText } from './format/escape.js';

export interface ProbeOptions {
  runDir?: string;
  json?: boolean;
}

export function parsePid(text: string, what = 'PID'): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new UsageError(`invalid ${what} '${text}'`);
  return Number(text);
}

export function parseCount(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid ${what} '${text}' (expected a whole number)`);
  return Number(text);
}

/** --run-dir, as probe/README.md names it. */
export function withProbeOptions(cmd: Command): Command {
  return cmd.option('--run-dir <dir>', 'run directory shared with the agent (default /tmp/nffi-inspect.<uid>)');
}

export function clientOptions(opts: ProbeOptions): ConnectOptions {
  return opts.runDir ? { runDir: opts.runDir } : {};
}

/** Join the serve that holds `pid` or attach in-process, run `fn`, let go — also when `fn` throws. */
export function withClient<T>(pid: number, opts: ProbeOptions, fn: (c: ProbeClient) => Promise<T>): Promise<T> {
  return connected(pid, clientOptions(opts), fn);
}

/** JSON to stdout; DEL, C1 and bidi characters escaped too (format/escape.ts), same data. */
export function printJson(value: unknown, pretty = true): void {
  process.stdout.write(jsonText(value, pretty ? 2 : undefined) + '\n');
}

/** Resolves on Ctrl-C (or SIGTERM), once; dispose() stops listening. */
export function interrupted(): { promise: Promise<string>; dispose(): void } {
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
