// A real terminal for end-to-end TUI tests: a private tmux server (its own socket name, no
// user config) running one command in a window of a fixed size. capture() reads the screen
// as the user sees it (the alternate screen only while the program runs: capture before it
// quits); keys() types as a user would; waitFor() polls the screen for text instead of
// sleeping. Environment as TUI.md says: no TMUX for the program inside, LANG=C.UTF-8 and
// NCURSES_NO_UTF8_ACS=1 so borders are drawn as lines.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
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

  /**
   * The normal screen with its scrollback (`capture-pane -S -`): after the program quits,
   * what the terminal shows again, including lines tmux scrolled away to print "Pane is dead".
   */
  captureHistory(): string {
    return this.tmux(['capture-pane', '-p', '-S', '-']);
  }

  /** A tmux format about the pane, e.g. '#{alternate_on}' or '#{pane_pid}'. */
  format(fmt: string): string {
    return this.tmux(['display-message', '-p', fmt]).trim();
  }

  /** tmux key names ('Enter', 'Escape', 'Tab', 'C-c') or literal text with literal = true. */
  keys(keys: string[], literal = false): void {
    this.tmux(['send-keys', ...(literal ? ['-l'] : []), ...keys]);
  }

  resize(cols: number, rows: number): void {
    this.tmux(['resize-window', '-x', String(cols), '-y', String(rows)]);
  }

  /**
   * Whether the command has exited (the pane is dead), with its status (128 + N for signal N).
   * tmux 3.3a on these machines now and then never waits for the pane's process (measured: 3 of
   * 15 `sh -c 'read x; exit 3'`, the same with node): the pane reads dead with no status and the
   * process stays a zombie. Any other child of the server exiting makes it wait for all of them,
   * so a dead pane without a status gets a `run-shell true` and a second look.
   */
  exitStatus(): number | undefined {
    const read = () => this.tmux(['display-message', '-p', '#{pane_dead} #{pane_dead_status} #{pane_dead_signal}'])
      .trim().split(' ');
    let [dead, status, signal] = read();
    if (dead === '1' && !status && !signal) {
      this.tmux(['run-shell', 'true']);
      [dead, status, signal] = read();
    }
    if (dead !== '1') return undefined;
    if (status) return Number(status);
    return signal ? 128 + Number(signal) : undefined;
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

  /** Ends the server and removes its socket (tmux leaves it behind). */
  kill(): void {
    let socket = '';
    try {
      socket = this.tmux(['display-message', '-p', '#{socket_path}']).trim();
      this.tmux(['kill-server']);
    } catch {
      // gone already
    }
    if (socket.endsWith(`/${this.server}`)) rmSync(socket, { force: true });
  }

  private tmux(args: string[]): string {
    return execFileSync('tmux', ['-L', this.server, ...args], { encoding: 'utf8' });
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
