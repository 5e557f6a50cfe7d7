// The one module that imports blessed. It builds the screen on injectable streams, picks a
// terminal description blessed 0.1.81 can read (../../shared/TUI.md has the measurements), turns
// blessed's key events into plain key names and gives the rest of tui/ flat "surfaces" (a box
// that shows pre-painted rows) instead of blessed elements. It also owns the promise that the
// user's terminal comes back: whatever ends the program (q, a signal, an exception, exit()),
// the alternate screen is left, the cursor shown and raw mode turned off.
import blessed from 'blessed';
import { AttrCache, Grid, type Cell } from './grid.js';
import { makeTheme, type Line, type Theme } from './style.js';

interface SurfaceState { rect: Rect; lines: Line[]; shown: boolean }

/** What a terminal-like input stream needs (process.stdin, or a PassThrough in tests). */
export type TermInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
/** What a terminal-like output stream needs (process.stdout, or a PassThrough in tests). */
export type TermOutput = NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };

/** The terminal cannot run the TUI (not a TTY, TERM=dumb); the message says what to use. */
export class TermError extends Error {
  override name = 'TermError';
}

export interface Rect { x: number; y: number; width: number; height: number }

/** A rectangle of the screen showing styled rows (style.ts: spans with roles). */
export interface Surface {
  place(rect: Rect): void;
  /** The rows, top down; each is laid out as style.paint would (clipped, then padded). */
  setLines(lines: Line[]): void;
  show(): void;
  hide(): void;
  /** Draw above the other surfaces (overlays). */
  front(): void;
  destroy(): void;
}

/** Keys by name: printable characters as themselves ('j', 'G', '?', '日'), others as 'up',
 * 'down', 'left', 'right', 'pageup', 'pagedown', 'home', 'end', 'enter', 'escape', 'tab',
 * 'S-tab', 'space', 'backspace', 'delete', 'C-c', 'C-u', 'M-x', … */
export type Key = string;

export interface TermOptions {
  input?: TermInput;
  output?: TermOutput;
  /** Environment for the decisions here (TERM, NO_COLOR, locale, TMUX); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** false forces no colour (a --no-color flag); NO_COLOR in env does the same. */
  color?: boolean;
  /** Restore the terminal on process exit, uncaught exceptions and signals (default true). */
  processHooks?: boolean;
  /** Called after the terminal is restored on SIGINT/SIGTERM/SIGHUP/SIGQUIT; without it the
   * signal is raised again so the process ends the way the signal says. */
  onSignal?: (signal: NodeJS.Signals) => void;
}

export interface Term {
  readonly theme: Theme;
  /** The terminal description handed to blessed. */
  readonly terminal: string;
  readonly disposed: boolean;
  size(): { cols: number; rows: number };
  surface(): Surface;
  /** Listen to keys; returns the unsubscribe. */
  onKey(listener: (key: Key) => void): () => void;
  /** Listen to resizes (after blessed re-allocated its buffers); returns the unsubscribe. */
  onResize(listener: () => void): () => void;
  render(): void;
  /** The screen as text, one line per row, trailing blanks trimmed (golden frames). */
  frame(): string;
  /** The screen with its SGR attributes, one line per row. */
  screenshot(): string;
  /** Run `fn`; if it throws, restore the terminal first, then let the error go on. */
  guard<T>(fn: () => T): T;
  /** Restore the terminal; idempotent. */
  dispose(): void;
}

export interface TerminalChoice { terminal: string; color: boolean; unicode: boolean }

const DIRECT_COLOUR = /^(truecolor|24bit)$/i;

/**
 * The terminfo name to give blessed for `env`, whether to use colour and Unicode glyphs. Throws a
 * TermError for terminals that cannot address the cursor.
 */
export function pickTerminal(env: NodeJS.ProcessEnv): TerminalChoice {
  const term = env.TERM ?? '';
  if (term === '' || term === 'dumb') {
    throw new TermError(`the TUI needs a terminal that can move the cursor (TERM=${term || 'unset'}); `
      + 'the one-shot commands (coroutines, queue --watch, tasks, stack) print plain text');
  }
  let terminal: string;
  let colours: number;
  // blessed cannot read ncurses 6.4's 32-bit entries: xterm-256color falls back to its bundled
  // copy, tmux-256color to 8-colour xterm, screen-256color dumps 16 lines on stderr.
  if (/-256colou?r$|-direct$/.test(term) || DIRECT_COLOUR.test(env.COLORTERM ?? '')) {
    [terminal, colours] = ['xterm-256color', 256];
  } else if (/^(xterm|linux|screen|tmux)$/.test(term)) {
    [terminal, colours] = [term, 8];
  } else if (/^vt(1\d\d|2\d\d)$/.test(term)) {
    [terminal, colours] = [term, 0];
  } else {
    // Anything else (xterm-color, rxvt, kitty, alacritty…): xterm, which they all understand,
    // rather than an entry blessed may choke on.
    [terminal, colours] = ['xterm', 8];
  }
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return {
    terminal,
    color: colours > 0 && !env.NO_COLOR,
    // The Linux console font lacks most block elements and arrows.
    unicode: /utf-?8/i.test(locale) && terminal !== 'linux',
  };
}

// What blessed reads from process.env while it builds the screen (program.js, tput.js).
const BLESSED_ENV = ['TMUX', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'NCURSES_NO_UTF8_ACS',
  'TERM_PROGRAM', 'ITERM_SESSION_ID', 'COLORTERM', 'VTE_VERSION', 'TERMINATOR_UUID'];

/** Run `fn` with blessed seeing `env` instead of process.env (tests inject one without TMUX:
 * with TMUX set blessed runs `tmux -V` synchronously). */
function withBlessedEnv<T>(env: NodeJS.ProcessEnv, fn: () => T): T {
  if (env === process.env) return fn();
  const saved = BLESSED_ENV.map((k) => [k, process.env[k]] as const);
  for (const k of BLESSED_ENV) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

interface BlessedKey { name?: string; full?: string; ctrl?: boolean; meta?: boolean }

/** blessed's keypress (ch, key) as one key name, or undefined for the duplicates it sends. */
export function keyName(ch: string | undefined, key: BlessedKey | undefined): Key | undefined {
  const name = key?.name;
  if (name === 'return' || name === 'linefeed') return undefined; // '\r' also arrives as 'enter'
  if (name === 'space' && !key?.ctrl && !key?.meta) return 'space';
  if (ch && !key?.ctrl && !key?.meta && !/[\x00-\x1f\x7f]/.test(ch)) return ch;
  return key?.full ?? name;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
// Written only if blessed's own teardown failed half way.
const RESTORE = '\x1b[0m\x1b[?25h\x1b[?1049l';

/** blessed's unicode module; blessedCharWidth: its own charWidth, once fastAsciiWidth wrapped it. */
export interface BlessedUnicode {
  charWidth(s: string | number, i?: number): number;
  blessedCharWidth?: (s: string | number, i?: number) => number;
}

/**
 * blessed's draw asks charWidth of every changed cell (fullUnicode), ~350 ns each on this VM even
 * for ASCII: a hit flood redraws a 200-column pane 5 times a second, 1% of a core. Printable
 * ASCII is one cell in blessed's own table too, so it is answered first; every other character
 * still goes to blessed's function.
 */
function fastAsciiWidth(): void {
  const u = (blessed as unknown as { unicode?: BlessedUnicode }).unicode;
  if (!u || u.blessedCharWidth) return;
  const slow = u.charWidth;
  u.blessedCharWidth = slow;
  u.charWidth = (s, i) => {
    if (typeof s === 'string' && i === undefined && s.length === 1) {
      const c = s.charCodeAt(0);
      if (c >= 0x20 && c < 0x7f) return 1;
    }
    return slow(s, i);
  };
}

export function createTerm(opts: TermOptions = {}): Term {
  fastAsciiWidth();
  const env = opts.env ?? process.env;
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stdout;
  if (!output.isTTY || !input.isTTY) {
    throw new TermError('the TUI needs a terminal on stdin and stdout; the one-shot commands '
      + '(and --json) work in pipes');
  }
  const choice = pickTerminal(env);
  const screen = withBlessedEnv(env, () => blessed.screen({
    // @types/blessed has input and output the wrong way round.
    input: input as never,
    output: output as never,
    terminal: choice.terminal,
    warnings: false,
    fullUnicode: true,
    smartCSR: true,
    autoPadding: false,
  }));
  // blessed's uncaughtException handler swallows the error and exits on its own; the monitor
  // below restores the terminal and leaves reporting to Node.
  const handler = (blessed.screen as unknown as { _exceptionHandler?: (...a: unknown[]) => void })._exceptionHandler;
  if (handler) process.removeListener('uncaughtException', handler);

  const theme = makeTheme({ color: choice.color && opts.color !== false, unicode: choice.unicode });
  const keyListeners = new Set<(key: Key) => void>();
  const resizeListeners = new Set<() => void>();
  let disposed = false;

  const onExit = () => dispose();
  const onException = () => dispose();
  const onSignal = (signal: NodeJS.Signals) => {
    dispose();
    if (opts.onSignal) opts.onSignal(signal);
    else process.kill(process.pid, signal);
  };
  const hooks = opts.processHooks !== false;
  if (hooks) {
    process.on('exit', onExit);
    process.on('uncaughtExceptionMonitor', onException);
    for (const s of SIGNALS) process.on(s, onSignal);
  }

  function dispose(): void {
    if (disposed) return;
    disposed = true;
    if (hooks) {
      process.removeListener('exit', onExit);
      process.removeListener('uncaughtExceptionMonitor', onException);
      for (const s of SIGNALS) process.removeListener(s, onSignal);
    }
    keyListeners.clear();
    resizeListeners.clear();
    try {
      screen.destroy();
    } catch {
      try {
        output.write(RESTORE);
        input.setRawMode?.(false);
      } catch {
        // nothing more can be done for a terminal that is gone
      }
    }
  }

  function guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      dispose();
      throw err;
    }
  }

  screen.on('keypress', (ch: string | undefined, key: BlessedKey | undefined) => {
    const name = keyName(ch, key);
    if (name === undefined || disposed) return;
    guard(() => {
      for (const l of [...keyListeners]) l(name);
    });
  });
  screen.on('resize', () => {
    if (disposed) return;
    guard(() => {
      for (const l of [...resizeListeners]) l();
    });
  });

  // Surfaces in z-order (front() moves one to the end); each draw writes them into the grid,
  // which blessed's draw compares with the terminal (grid.ts says why not blessed boxes).
  const surfaces: SurfaceState[] = [];
  const grid = new Grid();
  const attrCache = new AttrCache(theme);

  function surface(): Surface {
    const st: SurfaceState = { rect: { x: 0, y: 0, width: 0, height: 0 }, lines: [], shown: true };
    surfaces.push(st);
    return {
      place(r) { st.rect = { ...r }; },
      setLines(lines) { st.lines = lines; },
      show: () => { st.shown = true; },
      hide: () => { st.shown = false; },
      front: () => {
        const i = surfaces.indexOf(st);
        if (i >= 0) surfaces.push(...surfaces.splice(i, 1));
      },
      destroy: () => {
        const i = surfaces.indexOf(st);
        if (i >= 0) surfaces.splice(i, 1);
      },
    };
  }

  function render(): void {
    if (disposed) return;
    const lines = (screen as unknown as { lines: (Cell[] & { dirty?: boolean })[] }).lines;
    const cols = screen.width as number;
    const rows = screen.height as number;
    grid.reset(cols, rows);
    for (const st of surfaces) {
      const { x, y, width, height } = st.rect;
      if (!st.shown || width <= 0 || height <= 0) continue;
      for (let i = 0; i < height; i++) grid.writeLine(x, y + i, width, st.lines[i], attrCache);
    }
    grid.applyTo(lines);
    // blessed's render would walk its (absent) elements first; draw writes the changed rows.
    screen.draw(0, lines.length - 1);
  }

  return {
    theme,
    terminal: choice.terminal,
    get disposed() { return disposed; },
    size: () => ({ cols: screen.width as number, rows: screen.height as number }),
    surface,
    onKey(l) { keyListeners.add(l); return () => keyListeners.delete(l); },
    onResize(l) { resizeListeners.add(l); return () => resizeListeners.delete(l); },
    render,
    frame: () => (screen as unknown as { lines: [number, string][][] }).lines
      .map((row) => row.map((cell) => cell[1]).join('').replace(/\x03/g, '').trimEnd())
      .join('\n'),
    screenshot: () => screen.screenshot(0, screen.width as number, 0, screen.height as number),
    guard,
    dispose,
  };
}
