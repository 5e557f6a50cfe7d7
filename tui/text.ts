// Text measured in terminal cells. Worker text (coroutine names, request URIs, locals, chunk names)
// is hostile data: `clean` escapes it first (the CLI's termText: controls, DEL, C1, bidi and
// invisible marks), then these helpers cut and pad it by cells, not by UTF-16 units.
//
// Widths follow blessed 0.1.81 (fullUnicode), which decides where each character lands in its
// buffer: East Asian wide characters take 2 cells, combining marks 0, everything else 1. Emoji
// are the one place blessed (1 cell) and today's terminals (2 cells) disagree, which would shift
// the rest of the row; `clean` shows them escaped (\u{1f600}) like the other risky characters:
// the emoji blocks, and every character drawn as an emoji by default (\p{Emoji_Presentation}:
// ⌚ ⚡ ✅ ❌ ⭐ …) that blessed does not count as wide.
import { termText } from '../cli/format/escape.js';

// East Asian Wide and Fullwidth ranges, as blessed counts them (inclusive).
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], [0x11a3, 0x11a7], [0x11fa, 0x11ff], [0x2329, 0x232a], [0x2e80, 0x2e99],
  [0x2e9b, 0x2ef3], [0x2f00, 0x2fd5], [0x2ff0, 0x2ffb], [0x3000, 0x303e], [0x3041, 0x3096],
  [0x3099, 0x30ff], [0x3105, 0x312d], [0x3131, 0x318e], [0x3190, 0x31ba], [0x31c0, 0x31e3],
  [0x31f0, 0x321e], [0x3220, 0x3247], [0x3250, 0x32fe], [0x3300, 0x4dbf], [0x4e00, 0xa48c],
  [0xa490, 0xa4c6], [0xa960, 0xa97c], [0xac00, 0xd7a3], [0xd7b0, 0xd7c6], [0xd7cb, 0xd7fb],
  [0xf900, 0xfaff], [0xfe10, 0xfe19], [0xfe30, 0xfe52], [0xfe54, 0xfe66], [0xfe68, 0xfe6b],
  [0xff01, 0xff60], [0xffe0, 0xffe6], [0x1b000, 0x1b001], [0x1f200, 0x1f202],
  [0x1f210, 0x1f23a], [0x1f240, 0x1f248], [0x1f250, 0x1f251], [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];

const COMBINING = /^[\p{Mn}\p{Me}]$/u;
// Emoji and pictographs (blessed: 1 cell, terminals: 2), the emoji presentation selector, and
// the characters shown as emoji by default (those blessed counts as wide are kept: see clean).
const EMOJI = /[\u{1f000}-\u{1f1ff}\u{1f300}-\u{1faff}\ufe0f\p{Emoji_Presentation}]/gu;

function isWide(cp: number): boolean {
  let lo = 0;
  let hi = WIDE.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = WIDE[mid]!;
    if (cp < a) hi = mid - 1;
    else if (cp > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Cells one character (a code point, as a string) takes. */
export function charWidth(ch: string): number {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (cp >= 0x300 && COMBINING.test(ch)) return 0;
  return isWide(cp) ? 2 : 1;
}

/** Cells a string takes. */
export function strWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch);
  return w;
}

/** Worker text made safe and measurable for one cell row (see the header comment). */
export function clean(s: string): string {
  return termText(s).replace(EMOJI, (c) => {
    const cp = c.codePointAt(0)!;
    // blessed and terminals agree on these (2 cells): 🈁 and the like
    if (cp !== 0xfe0f && isWide(cp)) return c;
    return `\\u{${cp.toString(16)}}`;
  });
}

/** The longest prefix of `s` that fits in `width` cells (a wide character never straddles). */
export function takeCells(s: string, width: number): string {
  let w = 0;
  let out = '';
  for (const ch of s) {
    const cw = charWidth(ch);
    if (w + cw > width) break;
    w += cw;
    out += ch;
  }
  return out;
}

/** The longest suffix of `s` that fits in `width` cells. */
export function takeLastCells(s: string, width: number): string {
  const chars = [...s];
  let w = 0;
  let i = chars.length;
  while (i > 0) {
    const cw = charWidth(chars[i - 1]!);
    if (w + cw > width) break;
    w += cw;
    i--;
  }
  return chars.slice(i).join('');
}

export type Elide = 'end' | 'start' | 'middle';

/**
 * `s` cut to at most `width` cells, the cut marked with `ellipsis` (at the end, the start, which
 * keeps file:line readable, or the middle). Never wider than `width`, even for width 0.
 */
export function truncate(s: string, width: number, ellipsis = '…', where: Elide = 'end'): string {
  if (width <= 0) return '';
  if (strWidth(s) <= width) return s;
  const ew = strWidth(ellipsis);
  if (ew >= width) return takeCells(ellipsis, width);
  const room = width - ew;
  if (where === 'start') return ellipsis + takeLastCells(s, room);
  if (where === 'middle') {
    const head = takeCells(s, Math.ceil(room / 2));
    return head + ellipsis + takeLastCells(s, room - strWidth(head));
  }
  return takeCells(s, room) + ellipsis;
}

export type Align = 'left' | 'right' | 'center';

/** `s` padded with spaces to exactly `width` cells (assumes it fits: see `fit`). */
export function pad(s: string, width: number, align: Align = 'left'): string {
  const gap = Math.max(0, width - strWidth(s));
  if (align === 'right') return ' '.repeat(gap) + s;
  if (align === 'center') {
    const left = gap >> 1;
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  }
  return s + ' '.repeat(gap);
}

/** `s` truncated and padded to exactly `width` cells. */
export function fit(s: string, width: number, align: Align = 'left', ellipsis = '…', where: Elide = 'end'): string {
  return pad(truncate(s, width, ellipsis, where), width, align);
}

/** Left and right parts on one row of `width` cells; the left part gives way first. */
export function spread(left: string, right: string, width: number, ellipsis = '…'): string {
  const r = truncate(right, width, ellipsis);
  const room = width - strWidth(r);
  const l = room > 1 ? truncate(left, room - 1, ellipsis) : '';
  return pad(l, width - strWidth(r)) + r;
}
