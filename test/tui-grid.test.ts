// tui/grid.ts writes surfaces' rows straight into blessed's cells. What it writes must be what
// blessed itself made of the same row painted as SGR text in a box (the way the TUI drew before):
// the same characters in the same cells (wide ones, combining marks, surrogate pairs, clipping at
// the edge) with the same attributes, for every role in both themes.
import blessed from 'blessed';
import { describe, expect, it } from 'vitest';
import { AttrCache, DEFAULT_ATTR, Grid } from '../tui/grid.js';
import { line, makeTheme, paint, span, type Line, type Role } from '../tui/style.js';
import { fakeTty } from '../tui/testing.js';

const ROLES: Role[] = ['plain', 'dim', 'bold', 'ok', 'warn', 'bad', 'new', 'title', 'titleFocus', 'header',
  'label', 'selected', 'selectedBlur', 'key', 'info', 'error', 'paused', 'prompt', 'cursor'];

const ROWS: Line[] = [
  line('plain text'),
  line([span('日本語', 'ok'), span(' x ', 'warn'), span('中', 'bad')], 'selected'),
  line([span('ete', 'key'), span(' x ', 'dim'), span('\x1b[2J bell\x07', 'error')]),
  line([span('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(2), 'title')], 'titleFocus'),
  line([span('ab日', 'new')]),
  ...ROLES.map((r) => line([span(`role ${r}`, r), span(' in selected', 'bad')], r)),
];

type Cells = [number, string][][];

function viaBlessed(rows: Line[], width: number, color: boolean): Cells {
  const tty = fakeTty(width + 4, rows.length + 2);
  const screen = blessed.screen({
    input: tty.input as never, output: tty.output as never, terminal: 'xterm-256color',
    warnings: false, fullUnicode: true, smartCSR: true, autoPadding: false,
  });
  try {
    const theme = makeTheme({ color, unicode: true });
    const box = blessed.box({ parent: screen, top: 1, left: 2, width, height: rows.length, tags: false, wrap: false, content: '' });
    box.setContent(rows.map((r) => paint(r, width, theme)).join('\n'));
    screen.render();
    return (screen as unknown as { lines: Cells }).lines.map((r) => r.map((c) => [c[0], c[1]] as [number, string]));
  } finally {
    screen.destroy();
  }
}

function viaGrid(rows: Line[], width: number, color: boolean): Cells {
  const g = new Grid();
  const cols = width + 4;
  g.reset(cols, rows.length + 2);
  const attrs = new AttrCache(makeTheme({ color, unicode: true }));
  rows.forEach((r, i) => g.writeLine(2, 1 + i, width, r, attrs));
  const out: Cells = [];
  for (let y = 0; y < g.rows; y++) {
    out.push(Array.from({ length: cols }, (_, x) => [g.attrs[y * cols + x]!, g.chars[y * cols + x]!] as [number, string]));
  }
  return out;
}

describe('grid cells', () => {
  it.each([[true, 40], [false, 40], [true, 8], [false, 1]])('equal blessed\'s own (colour %s, width %i)', (color, width) => {
    expect(viaGrid(ROWS, width, color)).toEqual(viaBlessed(ROWS, width, color));
  });

  // Where blessed's boxes went wrong, the grid does not: a box counted a surrogate pair or a
  // combining mark as a cell when clipping (the row lost its last cells, or half a character
  // went to the terminal) and dropped a combining mark at the edge.
  it('keeps surrogate pairs and combining marks whole, and the cells after them', () => {
    const text = (cells: [number, string][][], y: number, from: number, n: number) => cells[y]!.slice(from, from + n).map((c) => c[1]);
    expect(text(viaGrid([line('ab 𝒳𝒴 cd')], 4, true), 1, 2, 5)).toEqual(['a', 'b', ' ', '𝒳', ' ']);
    expect(text(viaGrid([line('ab 𝒳𝒴 cd')], 8, true), 1, 2, 8)).toEqual(['a', 'b', ' ', '𝒳', '𝒴', ' ', 'c', 'd']);
    expect(text(viaGrid([line('e\u0301te\u0301 xy')], 6, false), 1, 2, 6)).toEqual(['e\u0301', 't', 'e\u0301', ' ', 'x', 'y']);
    expect(text(viaGrid([line('e\u0301te\u0301')], 1, false), 1, 2, 2)).toEqual(['e\u0301', ' ']);
    expect(text(viaGrid([line('日\u0301x')], 3, false), 1, 2, 3)).toEqual(['日\u0301', '\x03', 'x']);
  });

  it('marks only the rows that changed, and leaves the rest of the screen blank', () => {
    const g = new Grid();
    g.reset(10, 3);
    const attrs = new AttrCache(makeTheme({ color: true, unicode: true }));
    g.writeLine(0, 1, 10, line('hi'), attrs);
    const lines = Array.from({ length: 3 }, () => Object.assign(Array.from({ length: 10 }, () => [DEFAULT_ATTR, ' '] as [number, string]), { dirty: false }));
    expect(g.applyTo(lines)).toBe(1);
    expect(lines.map((l) => l.dirty)).toEqual([false, true, false]);
    expect(lines[1]!.map((c) => c[1]).join('')).toBe('hi        ');
    lines[1]!.dirty = false;
    expect(g.applyTo(lines)).toBe(0);
  });
});
