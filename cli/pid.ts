// Shared bits of the commands that talk to workers: the PID argument, --run-dir, a session
// held for the duration of one command, JSON output.
import type { Command } from 'commander';
import { Session, type SessionOptions } from '../probe/session.js';
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

export function sessionOptions(opts: ProbeOptions): SessionOptions {
  return opts.runDir ? { runDir: opts.runDir } : {};
}

/** Attach, run `fn`, detach — also when `fn` throws. */
export async function withSession<T>(pid: number, opts: ProbeOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await Session.open(pid, sessionOptions(opts));
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** JSON to stdout; DEL, C1 and bidi characters escaped too (format/escape.ts), same data. */
export function printJson(value: unknown, pretty = true): void {
  process.stdout.write(jsonText(value, pretty ? 2 : undefined) + '\n');
}

/** An array from the agent, tolerating an empty table encoded as {} (Lua cannot tell). */
export function list<T>(value: T[] | undefined | unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
