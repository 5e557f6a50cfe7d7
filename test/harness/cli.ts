// Spawn the real CLI (bin/nffi-inspect.js) as users run it, optionally as another user.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const BIN = `${ROOT}/bin/nffi-inspect.js`;

export interface CliResult { status: number | null; stdout: string; stderr: string }

export interface CliOptions {
  /** Run through `runuser -u <user> --` (the tests run as root). */
  user?: string;
  timeout?: number;
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const argv = opts.user
    ? ['runuser', ['-u', opts.user, '--', process.execPath, BIN, ...args]] as const
    : [process.execPath, [BIN, ...args]] as const;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], [...argv[1]], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nffi-inspect ${args.join(' ')}: no exit within ${opts.timeout ?? 20_000} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, opts.timeout ?? 20_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Exit 1 (or `code`) with exactly one `nffi-inspect: ` line on stderr and no stack. */
export function oneLineError(r: CliResult): string {
  const lines = r.stderr.trimEnd().split('\n');
  if (lines.length !== 1 || !lines[0]!.startsWith('nffi-inspect: ') || /\n\s+at /.test(r.stderr)) {
    throw new Error(`expected one error line, got status ${r.status}, stderr:\n${r.stderr}`);
  }
  return lines[0]!;
}

/** Run the CLI for `ms`, then Ctrl-C it (SIGINT) as a user would. */
export function runCliUntil(args: string[], ms: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const stop = setTimeout(() => child.kill('SIGINT'), ms);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(stop);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A CLI process left running (e.g. `breakpoint`), its output collected as it comes. */
export interface RunningCli {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  /** The NDJSON lines printed so far. */
  lines: () => any[];
}

const running: ChildProcess[] = [];

/** Start the CLI and leave it running; `stopCliAfterEach()` Ctrl-Cs what a test left behind. */
export function startCli(args: string[]): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { child, out: () => out, err: () => err, exited, lines };
}

/** Register (at a test file's top level) the Ctrl-C of every CLI a test left running. */
export function stopCliAfterEach(): void {
  afterEach(() => {
    for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGINT');
  });
}
