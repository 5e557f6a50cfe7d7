// The bottom-line prompts. A LineEditor edits one line with readline's keys, draws its cursor
// as a reverse cell (the real cursor stays hidden) and scrolls to keep it in view. On it:
// - the `:` command line: the words of the CLI typed inside the TUI (`breakpoint app.lua:42 if
//   n > 3`, `delete 2`, `stack 17`); ↑/↓ walk the history (what was being typed comes back after
//   the newest entry), Tab asks the completion hook, Enter hands the line over, Esc abandons it;
// - the `/` filter prompt: filters the focused pane as you type (k9s' way), a case-insensitive
//   substring, `!` in front inverts it; Enter keeps it, Esc puts back the previous one, an empty
//   line clears it.
// Backspace on an empty line leaves either prompt, as in vim.
import { line, span, type Line, type Span, type Theme } from '../style.js';
import { clean, spread, strWidth, takeCells, takeLastCells } from '../text.js';
import type { Key } from '../term.js';
import type { Filter, Filterable } from '../view.js';

/** A key that types a character: one code point, not a control. */
export function typedChar(key: Key): string | undefined {
  if (key === 'space') return ' ';
  const chars = [...key];
  return chars.length === 1 && !/[\x00-\x1f\x7f]/.test(key) ? key : undefined;
}

export class LineEditor {
  private chars: string[] = [];
  private at = 0;

  get text(): string {
    return this.chars.join('');
  }

  /** Cursor position in characters (code points). */
  get cursor(): number {
    return this.at;
  }

  /** Replace the text; the cursor goes to the end. */
  set(text: string): void {
    this.chars = [...text];
    this.at = this.chars.length;
  }

  /** Replace the text before the cursor (completion). */
  replaceBefore(count: number, text: string): void {
    const start = Math.max(0, this.at - count);
    const add = [...text];
    this.chars.splice(start, this.at - start, ...add);
    this.at = start + add.length;
  }

  /** true if the key edited or moved. */
  handleKey(key: Key): boolean {
    const ch = typedChar(key);
    if (ch !== undefined) {
      this.chars.splice(this.at, 0, ch);
      this.at++;
      return true;
    }
    switch (key) {
      case 'left': case 'C-b': this.at = Math.max(0, this.at - 1); return true;
      case 'right': case 'C-f': this.at = Math.min(this.chars.length, this.at + 1); return true;
      case 'home': case 'C-a': this.at = 0; return true;
      case 'end': case 'C-e': this.at = this.chars.length; return true;
      case 'backspace': case 'C-h':
        if (this.at > 0) this.chars.splice(--this.at, 1);
        return true;
      case 'delete': case 'C-d':
        this.chars.splice(this.at, 1);
        return true;
      case 'C-u': this.chars.splice(0, this.at); this.at = 0; return true;
      case 'C-k': this.chars.splice(this.at); return true;
      case 'C-w': {
        let i = this.at;
        while (i > 0 && this.chars[i - 1] === ' ') i--;
        while (i > 0 && this.chars[i - 1] !== ' ') i--;
        this.chars.splice(i, this.at - i);
        this.at = i;
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * `prompt` then the text, in `width` cells, with the cursor as a reverse cell; the start of a
   * long text scrolls out (marked with `ellipsis`) to keep the cursor in view.
   */
  render(prompt: string, width: number, ellipsis: string): Span[] {
    const before = clean(this.chars.slice(0, this.at).join(''));
    const under = clean(this.chars[this.at] ?? ' ');
    const after = clean(this.chars.slice(this.at + 1).join(''));
    const room = width - strWidth(prompt) - strWidth(under);
    const head = strWidth(before) <= room ? before : ellipsis + takeLastCells(before, Math.max(0, room - strWidth(ellipsis)));
    return [span(prompt, 'prompt'), span(head), span(under, 'cursor'), span(takeCells(after, Math.max(0, room - strWidth(head))))];
  }
}

/** The prompt and its line, with `hint` on the right while at least 30 cells stay for typing. */
function promptLine(editor: LineEditor, prompt: string, hint: string, width: number, theme: Theme): Line {
  const showHint = width - strWidth(hint) - 1 >= 30;
  const spans = editor.render(prompt, showHint ? width - strWidth(hint) - 1 : width, theme.glyphs.ellipsis);
  if (!showHint) return line(spans);
  const used = spans.reduce((n, s) => n + strWidth(s.text), 0);
  return line([...spans, span(spread('', hint, width - used), 'dim')]);
}

/** Candidates for the word that ends at the cursor; `start` is where that word begins (chars). */
export type Completer = (text: string, cursor: number) => { start: number; candidates: string[] } | undefined;

export interface CommandLineOptions {
  /** The line, trimmed and not empty. */
  onSubmit(text: string): void;
  complete?: Completer;
  /** Several candidates: show them (the shell puts them on the status line). */
  onCandidates?(candidates: string[]): void;
  historySize?: number;
}

function commonPrefix(words: string[]): string {
  if (words.length === 0) return '';
  let p = words[0]!;
  for (const w of words) while (!w.startsWith(p)) p = p.slice(0, -1);
  return p;
}

export class CommandLine {
  readonly editor = new LineEditor();
  private entries: string[] = [];
  private at = 0;
  private draft = '';
  active = false;

  constructor(private readonly opts: CommandLineOptions) {}

  get history(): readonly string[] {
    return this.entries;
  }

  open(initial = ''): void {
    this.active = true;
    this.editor.set(initial);
    this.at = this.entries.length;
    this.draft = '';
  }

  close(): void {
    this.active = false;
  }

  /** While open the command line takes every key. */
  handleKey(key: Key): boolean {
    if (!this.active) return false;
    switch (key) {
      case 'escape': this.close(); return true;
      case 'enter': this.submit(); return true;
      case 'up': this.walk(-1); return true;
      case 'down': this.walk(1); return true;
      case 'tab': this.completeWord(); return true;
      case 'backspace':
        if (this.editor.text === '') this.close(); // like vim: backspace on an empty line leaves
        else this.editor.handleKey(key);
        return true;
      default:
        this.editor.handleKey(key);
        return true;
    }
  }

  private submit(): void {
    const text = this.editor.text.trim();
    this.close();
    if (!text) return;
    if (this.entries[this.entries.length - 1] !== text) this.entries.push(text);
    const max = this.opts.historySize ?? 100;
    if (this.entries.length > max) this.entries.splice(0, this.entries.length - max);
    this.opts.onSubmit(text);
  }

  private walk(step: number): void {
    const to = this.at + step;
    if (to < 0 || to > this.entries.length) return;
    if (this.at === this.entries.length) this.draft = this.editor.text;
    this.at = to;
    this.editor.set(to === this.entries.length ? this.draft : this.entries[to]!);
  }

  private completeWord(): void {
    const text = this.editor.text;
    const got = this.opts.complete?.(text, this.editor.cursor);
    if (!got || got.candidates.length === 0) return;
    const typed = this.editor.cursor - got.start;
    if (got.candidates.length === 1) {
      // A word that goes on (a file before its `:LINE`, `ffi:RUNTIME.`) takes no space.
      const only = got.candidates[0]!;
      this.editor.replaceBefore(typed, /[:./]$/.test(only) ? only : `${only} `);
      return;
    }
    const prefix = commonPrefix(got.candidates);
    if ([...prefix].length > typed) this.editor.replaceBefore(typed, prefix);
    this.opts.onCandidates?.(got.candidates);
  }

  render(width: number, theme: Theme): Line {
    const g = theme.glyphs;
    return promptLine(this.editor, ':', `${g.up}${g.down} history${g.sep}Tab complete${g.sep}Esc cancel`, width, theme);
  }

}

/** The filter typed as `text` (`!` first inverts), or undefined for an empty one. */
export function parseFilter(text: string): Filter | undefined {
  const invert = text.startsWith('!');
  const needle = (invert ? text.slice(1) : text).toLowerCase();
  if (!needle) return undefined;
  return {
    text,
    invert,
    test: (haystack) => haystack.toLowerCase().includes(needle) !== invert,
  };
}

export class FilterPrompt {
  readonly editor = new LineEditor();
  private target: Filterable | undefined;
  private before: Filter | undefined;

  get active(): boolean {
    return this.target !== undefined;
  }

  /** Start editing the filter of `target`, from the text it has now. */
  open(target: Filterable): void {
    this.target = target;
    this.before = target.filter;
    this.editor.set(target.filter?.text ?? '');
  }

  /** While open the prompt takes every key. */
  handleKey(key: Key): boolean {
    const target = this.target;
    if (!target) return false;
    if (key === 'enter') {
      this.target = undefined;
      return true;
    }
    if (key === 'escape') {
      target.setFilter(this.before);
      this.target = undefined;
      return true;
    }
    if (key === 'backspace' && this.editor.text === '') {
      this.target = undefined;
      return true;
    }
    if (this.editor.handleKey(key)) target.setFilter(parseFilter(this.editor.text));
    return true;
  }

  render(width: number, theme: Theme): Line {
    const g = theme.glyphs;
    return promptLine(this.editor, '/', `! inverts${g.sep}Enter keep${g.sep}Esc cancel`, width, theme);
  }

}
