// A real terminal for end-to-end TUI tests: a private tmux server (its own socket name, no
// user config) running one command in a window of a fixed size. capture() reads the screen
// as the user sees it (the alternate screen only while the program runs: capture before it
// quits); keys() types as a user would; waitFor() polls the screen for text instead of
// sleeping. Environment as TUI.md says: no TMUX for the program inside, LANG=C.UTF-8 and
// NCURSES_NO_UTF8_ACS=1 so borders are drawn as lines.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { waitFor } from './nginx.js';

export interface TmuxOptions {
  cols: number;
  rows: number;
  env?: Record<string, string>;
}

export class TmuxScreen {
  private constructor(readonly server: string) {}

  static start(command: string[], opts: TmuxOptions): TmuxScreen {
    const server = `nffi-test-${randomBytes(4).toString('hex')}`;
    const env = { LANG: 'C.UTF-8', NCURSES_NO_UTF8_ACS: '1', TERM: 'tmux-256color', ...opts.env };
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`);
    const cmd = ['env', '-u', 'TMUX', ...envArgs, ...command.map(shellQuote)].join(' ');
    const t = new TmuxScreen(server);
    // remain-on-exit before the command starts: a crash stays readable
    t.tmux(['-f', '/dev/null', 'start-server', ';', 'set-option', '-g', 'remain-on-exit', 'on', ';',
      'new-session', '-d', '-x', String(opts.cols), '-y', String(opts.rows), cmd]);
    return t;
  }

  /** The screen as text, one line per row (trailing blanks trimmed). */
  capture(colour = false): string {
    return this.tmux(['capture-pane', '-p', ...(colour ? ['-e'] : [])]);
  }

  /** tmux key names ('Enter', 'Escape', 'Tab', 'C-c') or literal text with literal = true. */
  keys(keys: string[], literal = false): void {
    this.tmux(['send-keys', ...(literal ? ['-l'] : []), ...keys]);
  }

  resize(cols: number, rows: number): void {
    this.tmux(['resize-window', '-x', String(cols), '-y', String(rows)]);
  }

  /** Whether the command has exited (the pane is dead), with its status. */
  exitStatus(): number | undefined {
    const out = this.tmux(['display-message', '-p', '#{pane_dead} #{pane_dead_status}']).trim();
    const [dead, status] = out.split(' ');
    return dead === '1' ? Number(status) : undefined;
  }

  async waitFor(pred: (screen: string) => boolean, what: string, timeout = 10_000): Promise<string> {
    let last = '';
    try {
      return await waitFor(() => {
        last = this.capture();
        return pred(last) ? last : undefined;
      }, { timeout, interval: 100, what });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- screen ---\n${last}`);
    }
  }

  kill(): void {
    try {
      this.tmux(['kill-server']);
    } catch {
      // gone already
    }
  }

  private tmux(args: string[]): string {
    return execFileSync('tmux', ['-L', this.server, ...args], { encoding: 'utf8' });
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
