// What things look like, decided in one place. Widgets describe rows as spans tagged with a
// role ('bad', 'selected', 'key', …); a Theme turns roles into SGR attributes. The colour theme
// uses the 8 basic colours (every terminal we accept has them); the mono theme (NO_COLOR, or a
// terminal without colours) uses only bold, underline and reverse, never a colour code.
import { clean, strWidth, takeCells } from './text.js';

export type Role =
  | 'plain' | 'dim' | 'bold'
  | 'ok' | 'warn' | 'bad' | 'new'
  | 'title' | 'titleFocus' | 'header' | 'label'
  | 'selected' | 'selectedBlur'
  | 'key' | 'info' | 'error' | 'paused' | 'prompt' | 'cursor';

export interface Span { text: string; role?: Role }

/** One screen row: spans, and a role for the whole row (selection, title bar) that fills it. */
export interface Line { spans: Span[]; role?: Role }

export const span = (text: string, role?: Role): Span => (role ? { text, role } : { text });
export const line = (spans: Span[] | string, role?: Role): Line => {
  const s = typeof spans === 'string' ? [span(spans)] : spans;
  return role ? { spans: s, role } : { spans: s };
};

export type Colour = 'black' | 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'white' | 'grey';
export interface Attrs { fg?: Colour; bg?: Colour; bold?: boolean; underline?: boolean; reverse?: boolean }

const COLOUR: Record<Role, Attrs> = {
  plain: {}, dim: { fg: 'grey' }, bold: { bold: true },
  ok: { fg: 'green' }, warn: { fg: 'yellow', bold: true }, bad: { fg: 'red', bold: true },
  new: { fg: 'cyan', bold: true },
  title: { fg: 'black', bg: 'white' }, titleFocus: { fg: 'black', bg: 'cyan', bold: true },
  header: { bold: true }, label: { fg: 'grey' },
  selected: { reverse: true }, selectedBlur: { underline: true },
  key: { fg: 'cyan', bold: true }, info: {}, error: { fg: 'red', bold: true },
  paused: { fg: 'black', bg: 'yellow', bold: true }, prompt: { bold: true }, cursor: { reverse: true },
};

const MONO: Record<Role, Attrs> = {
  plain: {}, dim: {}, bold: { bold: true },
  ok: {}, warn: { bold: true }, bad: { bold: true, reverse: true }, new: { bold: true },
  title: { underline: true }, titleFocus: { reverse: true, bold: true },
  header: { bold: true }, label: {},
  selected: { reverse: true }, selectedBlur: { underline: true },
  key: { bold: true }, info: {}, error: { bold: true, reverse: true },
  paused: { reverse: true, bold: true }, prompt: { bold: true }, cursor: { reverse: true },
};

const FG: Record<Colour, number> = {
  black: 30, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, white: 37, grey: 90,
};

export interface Glyphs {
  ellipsis: string; spark: string; open: string; closed: string; leaf: string;
  vline: string; hline: string; sep: string; up: string; down: string; gutter: string;
  tl: string; tr: string; bl: string; br: string; focus: string;
}

export const UNICODE_GLYPHS: Glyphs = {
  ellipsis: '…', spark: '▁▂▃▄▅▆▇█', open: '▾', closed: '▸', leaf: ' ',
  vline: '│', hline: '─', sep: ' · ', up: '↑', down: '↓', gutter: '>',
  tl: '┌', tr: '┐', bl: '└', br: '┘', focus: '▶',
};

export const ASCII_GLYPHS: Glyphs = {
  ellipsis: '~', spark: '_.:-=+*#', open: '-', closed: '+', leaf: ' ',
  vline: '|', hline: '-', sep: ' | ', up: '^', down: 'v', gutter: '>',
  tl: '+', tr: '+', bl: '+', br: '+', focus: '>',
};

export interface Theme {
  readonly color: boolean;
  readonly unicode: boolean;
  readonly glyphs: Glyphs;
}

export function makeTheme(opts: { color: boolean; unicode: boolean }): Theme {
  return { ...opts, glyphs: opts.unicode ? UNICODE_GLYPHS : ASCII_GLYPHS };
}

/** What a span of role `top` looks like in a row of role `base` (the row's role fills it). */
export function merge(theme: Theme, base: Role | undefined, top: Role | undefined): Attrs {
  const table = theme.color ? COLOUR : MONO;
  const a: Attrs = { ...(base ? table[base] : {}) };
  const b = top ? table[top] : {};
  // Reverse on reverse would not show: a flagged cell in the selected row underlines instead.
  if (a.reverse && b.reverse) return { ...a, ...b, reverse: true, underline: true, bold: true };
  return { ...a, ...b };
}

function sgr(a: Attrs, color: boolean): string {
  const codes: number[] = [];
  if (a.bold) codes.push(1);
  if (a.underline) codes.push(4);
  if (a.reverse) codes.push(7);
  if (color && a.fg) codes.push(FG[a.fg]);
  if (color && a.bg) codes.push(FG[a.bg] + 10);
  return codes.length ? `\x1b[${codes.join(';')}m` : '';
}

/**
 * One row as blessed content: exactly `width` cells (clipped, then padded: the row's role fills
 * the whole row), every span's text escaped (clean is idempotent, so widgets may clean first to
 * measure), attributes as SGR that blessed parses. The text holds no other escape sequence.
 */
export function paint(row: Line, width: number, theme: Theme): string {
  let out = '';
  let used = 0;
  for (const s of row.spans) {
    if (used >= width) break;
    const text = takeCells(clean(s.text), width - used);
    if (!text) continue;
    used += strWidth(text);
    const code = sgr(merge(theme, row.role, s.role), theme.color);
    out += code ? `${code}${text}\x1b[m` : text;
  }
  if (used < width) {
    const fill = ' '.repeat(width - used);
    const code = row.role ? sgr(merge(theme, row.role, undefined), theme.color) : '';
    out += code ? `${code}${fill}\x1b[m` : fill;
  }
  return out;
}

/** Spans clipped and padded to exactly `width` cells (a coloured sparkline in a table cell). */
export function fitSpans(spans: Span[], width: number, align: 'left' | 'right' = 'left'): Span[] {
  const out: Span[] = [];
  let used = 0;
  for (const s of spans) {
    const text = takeCells(clean(s.text), width - used);
    if (!text) continue;
    used += strWidth(text);
    out.push(s.role ? { text, role: s.role } : { text });
  }
  if (used < width) {
    const fill = span(' '.repeat(width - used));
    if (align === 'right') out.unshift(fill);
    else out.push(fill);
  }
  return out;
}

/** Plain text of a row (tests, the filter, width checks). */
export function plain(row: Line): string {
  return row.spans.map((s) => s.text).join('');
}

/** Cells the spans take. */
export function lineWidth(row: Line): number {
  return strWidth(plain(row));
}

export type Level = 'ok' | 'warn' | 'bad';

/** Where a value crosses from ok to warn to bad. `lowerIsWorse` for things like a hit rate. */
export interface Thresholds { warn: number; bad: number; lowerIsWorse?: boolean }

export function level(value: number, t: Thresholds): Level {
  if (t.lowerIsWorse) return value <= t.bad ? 'bad' : value <= t.warn ? 'warn' : 'ok';
  return value >= t.bad ? 'bad' : value >= t.warn ? 'warn' : 'ok';
}
