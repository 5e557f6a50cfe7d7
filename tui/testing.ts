// Headless terminals for tests (TUI.md, "Testing a blessed screen"): PassThrough streams that
// claim to be a TTY of a given size, a term built on them with a fixed environment (no TMUX,
// UTF-8, xterm-256color unless told otherwise) and no process hooks, key sequences by name,
// and golden frames that UPDATE_GOLDEN=1 rewrites and whose absence fails.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PassThrough } from 'node:stream';
import { createTerm, type Term, type TermOptions } from './term.js';

export interface FakeTty {
  input: PassThrough & { isTTY: boolean; isRaw: boolean; setRawMode(raw: boolean): void };
  output: PassThrough & { isTTY: boolean; columns: number; rows: number };
  /** Everything written to the output so far, as a string. */
  written(): string;
  /** Resize the fake terminal and tell blessed (as SIGWINCH would). */
  resize(cols: number, rows: number): void;
}

export function fakeTty(cols: number, rows: number): FakeTty {
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    setRawMode(raw: boolean) { input.isRaw = raw; },
  });
  const output = Object.assign(new PassThrough(), { isTTY: true, columns: cols, rows });
  // Recorded as written (a PassThrough emits its first chunks a tick later); what flows out
  // of the other end is dropped unless someone listens.
  let text = '';
  const write = output.write.bind(output) as (chunk: unknown, ...rest: unknown[]) => boolean;
  output.write = ((chunk: unknown, ...rest: unknown[]) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    return write(chunk, ...rest);
  }) as typeof output.write;
  output.resume();
  return {
    input,
    output,
    written: () => text,
    resize(c, r) {
      output.columns = c;
      output.rows = r;
      output.emit('resize');
    },
  };
}

export const TEST_ENV: NodeJS.ProcessEnv = { TERM: 'xterm-256color', LANG: 'C.UTF-8' };

/** A term on a fake TTY. Call term.dispose() (it destroys the blessed screen) in every test. */
export function testTerm(cols: number, rows: number, opts: Omit<TermOptions, 'input' | 'output'> = {}): { term: Term; tty: FakeTty } {
  const tty = fakeTty(cols, rows);
  const term = createTerm({ env: TEST_ENV, processHooks: false, ...opts, input: tty.input, output: tty.output });
  return { term, tty };
}

/** Escape sequences for named keys, as a terminal sends them. */
export const SEQ: Record<string, string> = {
  up: '\x1b[A', down: '\x1b[B', right: '\x1b[C', left: '\x1b[D',
  pageup: '\x1b[5~', pagedown: '\x1b[6~', home: '\x1b[H', end: '\x1b[F',
  enter: '\r', escape: '\x1b', tab: '\t', 'S-tab': '\x1b[Z', space: ' ',
  backspace: '\x7f', delete: '\x1b[3~', 'C-c': '\x03', 'C-u': '\x15', 'C-w': '\x17',
};

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Type keys into the fake TTY, one read each (an Esc and the next key in one read would be
 * Alt+key): names from SEQ, anything else as text.
 */
export async function typeKeys(tty: FakeTty, keys: string[]): Promise<void> {
  for (const k of keys) {
    tty.input.write(SEQ[k] ?? k);
    await tick();
    // blessed waits for more after a lone Esc before it calls it Escape.
    if (k === 'escape') await new Promise<void>((resolve) => setTimeout(resolve, 60));
  }
}

/**
 * The expected text for golden file `path`: the file's content, or `actual` after writing it
 * when UPDATE_GOLDEN=1. A missing golden fails (CI must not write its own expectations).
 */
export function golden(path: string, actual: string): string {
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return actual;
  }
  if (!existsSync(path)) throw new Error(`missing golden file ${path}: run with UPDATE_GOLDEN=1 and commit it`);
  return readFileSync(path, 'utf8');
}
