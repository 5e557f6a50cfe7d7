// The status line: the last message on the left (an error stays longer than a note and never
// interrupts anything: whatever failed — a command, a request to the probe — is said here,
// not thrown), and the session's state on the right (refresh rate, breakpoints, drops).
import { line, span, type Line, type Theme } from '../style.js';
import { clean, spread, strWidth, truncate } from '../text.js';

export interface StatusOptions {
  now: () => number;
  /** How long a note shows (ms, default 5 s). */
  infoMs?: number;
  /** How long an error shows (ms, default 20 s). */
  errorMs?: number;
  /** Something new to show or something expired: ask for a render. */
  onChange?: () => void;
}

interface Message { text: string; kind: 'info' | 'error'; until: number }

/** The message of anything thrown or rejected. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export class StatusLine {
  private message: Message | undefined;
  private right = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: StatusOptions) {}

  info(text: string): void {
    this.show({ text, kind: 'info', until: this.opts.now() + (this.opts.infoMs ?? 5_000) });
  }

  error(err: unknown): void {
    this.show({ text: errorText(err), kind: 'error', until: this.opts.now() + (this.opts.errorMs ?? 20_000) });
  }

  clear(): void {
    this.message = undefined;
    this.opts.onChange?.();
  }

  /** Text on the right (state); empty for none. */
  setRight(text: string): void {
    this.right = text;
  }

  /** The message showing now, if any. */
  current(): { text: string; kind: 'info' | 'error' } | undefined {
    const m = this.message;
    return m && m.until > this.opts.now() ? { text: m.text, kind: m.kind } : undefined;
  }

  private show(m: Message): void {
    this.message = m;
    clearTimeout(this.timer);
    // Repaint when it expires (an idle, paused screen would otherwise keep it forever).
    this.timer = setTimeout(() => this.opts.onChange?.(), Math.max(0, m.until - this.opts.now()) + 10);
    this.timer.unref();
    this.opts.onChange?.();
  }

  dispose(): void {
    clearTimeout(this.timer);
  }

  render(width: number, theme: Theme): Line {
    const m = this.current();
    const right = clean(this.right);
    if (!m) return line([span(spread('', right, width, theme.glyphs.ellipsis), 'dim')]);
    const room = Math.max(0, width - (right ? strWidth(right) + 2 : 0));
    const prefix = m.kind === 'error' ? 'error: ' : '';
    const text = truncate(prefix + clean(m.text), room, theme.glyphs.ellipsis);
    const rest = width - strWidth(text);
    return line([span(text, m.kind === 'error' ? 'error' : 'info'), span(spread('', right, rest, theme.glyphs.ellipsis), 'dim')]);
  }
}
