// The screen as cells, in the form blessed 0.1.81 keeps it (screen.lines: rows of [attr, ch],
// attr = flags << 18 | fg << 9 | bg, 0x1ff for the terminal's default colour). Surfaces write
// their rows here directly; blessed only compares the cells with what the terminal shows and
// writes the difference (screen.draw). Before, each surface was a blessed box: every draw turned
// the rows into SGR text, blessed parsed it back (setContent) and walked every cell of every box
// again (render), which at 200×60 cost more than everything else the TUI does between samples.
//
// Cells follow blessed's fullUnicode rules, so its draw treats them as its own: a wide character
// in one cell and '\x03' in the next (draw skips it), a combining mark joined to the character
// before it, a surrogate pair kept in one cell.
import { clean, charWidth } from './text.js';
import { merge, type Attrs, type Colour, type Line, type Role, type Theme } from './style.js';

export type Cell = [number, string];

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** blessed's attribute for the terminal's defaults (screen.dattr). */
export const DEFAULT_ATTR = (0 << 18) | (0x1ff << 9) | 0x1ff;

const COLOUR_INDEX: Record<Colour, number> = {
  black: 0, red: 1, green: 2, yellow: 3, blue: 4, magenta: 5, cyan: 6, white: 7, grey: 8,
};

/** `a` as blessed's attribute number (the one its SGR parser gives for style.paint's codes). */
export function encodeAttrs(a: Attrs, color: boolean): number {
  const flags = (a.bold ? 1 : 0) | (a.underline ? 2 : 0) | (a.reverse ? 8 : 0);
  const fg = color && a.fg ? COLOUR_INDEX[a.fg] : 0x1ff;
  const bg = color && a.bg ? COLOUR_INDEX[a.bg] : 0x1ff;
  return (flags << 18) | (fg << 9) | bg;
}

/** Attribute numbers by row role and span role, for one theme. */
export class AttrCache {
  private readonly byRoles = new Map<string, number>();

  constructor(private readonly theme: Theme) {}

  get(base: Role | undefined, top: Role | undefined): number {
    const k = `${base ?? ''}|${top ?? ''}`;
    let v = this.byRoles.get(k);
    if (v === undefined) this.byRoles.set(k, (v = encodeAttrs(merge(this.theme, base, top), this.theme.color)));
    return v;
  }
}

/**
 * The cells wanted on screen for one draw: attributes and characters of cols × rows, cleared to
 * blanks, then each surface's rows written in z-order.
 */
export class Grid {
  attrs = new Int32Array(0);
  chars: string[] = [];
  cols = 0;
  rows = 0;

  reset(cols: number, rows: number): void {
    if (cols !== this.cols || rows !== this.rows) {
      this.cols = cols;
      this.rows = rows;
      this.attrs = new Int32Array(cols * rows);
      this.chars = new Array<string>(cols * rows);
    }
    this.attrs.fill(DEFAULT_ATTR);
    this.chars.fill(' ');
  }

  /**
   * One row at (x, y), exactly `width` cells as style.paint lays it out: spans clipped at the
   * edge (a wide character never straddles it), then the rest filled with the row role's blank.
   * Parts outside the screen are dropped.
   */
  writeLine(x0: number, y: number, width: number, row: Line | undefined, attrs: AttrCache): void {
    if (y < 0 || y >= this.rows) return;
    const end = Math.min(width, this.cols - x0);
    const base = y * this.cols + x0;
    let used = 0;
    if (row) {
      for (const s of row.spans) {
        if (used >= end) break;
        const attr = attrs.get(row.role, s.role);
        const text = s.text;
        if (PRINTABLE_ASCII.test(text)) {
          // most of a screen: one cell per character, nothing to clean
          const n = Math.min(text.length, end - used);
          for (let i = 0; i < n; i++) {
            this.attrs[base + used + i] = attr;
            this.chars[base + used + i] = text[i]!;
          }
          used += n;
          continue;
        }
        for (const ch of clean(text)) {
          const w = charWidth(ch);
          if (w === 0) {
            if (used > 0) {
              // a combining mark shares its base character's cell (the '\x03' after a wide one
              // is skipped to reach it)
              const at = base + used - 1;
              const prev = this.chars[at] === '\x03' && used > 1 ? at - 1 : at;
              this.chars[prev] += ch;
            }
            continue;
          }
          // as takeCells: this span stops here, the next may still have a narrower start
          if (used + w > end) break;
          this.attrs[base + used] = attr;
          this.chars[base + used] = ch;
          if (w === 2) {
            this.attrs[base + used + 1] = attr;
            this.chars[base + used + 1] = '\x03';
          }
          used += w;
        }
      }
    }
    if (used < end) {
      const fill = attrs.get(row?.role, undefined);
      for (let i = used; i < end; i++) {
        this.attrs[base + i] = fill;
        this.chars[base + i] = ' ';
      }
    }
  }

  /**
   * Copy into blessed's rows, marking each row that changed dirty (blessed then writes only
   * those). Returns the number of rows that changed.
   */
  applyTo(lines: (Cell[] & { dirty?: boolean })[]): number {
    let changed = 0;
    const rows = Math.min(this.rows, lines.length);
    for (let y = 0; y < rows; y++) {
      const row = lines[y]!;
      const cols = Math.min(this.cols, row.length);
      let dirty = false;
      for (let x = 0, i = y * this.cols; x < cols; x++, i++) {
        const cell = row[x]!;
        const a = this.attrs[i]!;
        const c = this.chars[i]!;
        if (cell[0] !== a || cell[1] !== c) {
          cell[0] = a;
          cell[1] = c;
          dirty = true;
        }
      }
      if (dirty) {
        row.dirty = true;
        changed++;
      }
    }
    return changed;
  }
}
