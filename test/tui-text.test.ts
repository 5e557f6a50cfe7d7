// Pure helpers of the TUI: cell widths (CJK, combining marks), truncation with an ellipsis that
// never splits a wide character, padding, number/duration formatting that fits a width, the
// escaping of worker text, painting rows as SGR and threshold levels.
import { describe, expect, it } from 'vitest';
import { fmtBytes, fmtClock, fmtCount, fmtDuration, fmtPercent, fmtRate } from '../tui/format.js';
import { fitSpans, level, line, makeTheme, paint, span } from '../tui/style.js';
import { charWidth, clean, fit, pad, spread, strWidth, takeCells, takeLastCells, truncate } from '../tui/text.js';

describe('cell widths', () => {
  it.each([
    ['ascii', 'abc', 3], ['CJK', '日本語', 6], ['halfwidth katakana', 'ｱｲ', 2], ['fullwidth latin', 'ＡＢ', 4],
    ['hangul', '한국', 4], ['combining acute', 'e\u0301', 1], ['plane 2 ideograph', '\u{20000}', 2],
    ['mixed', 'a日b', 4], ['empty', '', 0], ['control', '\x07', 0],
  ])('%s: %j is %d cells', (_name, s, w) => expect(strWidth(s)).toBe(w));

  it('counts one code point at a time', () => {
    expect(charWidth('日')).toBe(2);
    expect(charWidth('x')).toBe(1);
  });
});

describe('truncate and fit', () => {
  it.each<[string, string, number, string]>([
    ['fits', 'hello', 5, 'hello'],
    ['cut with ellipsis', 'hello world', 8, 'hello w…'],
    ['width 1', 'hello', 1, '…'],
    ['width 0', 'hello', 0, ''],
    ['CJK never split', '日本語テキスト', 6, '日本…'],
    ['CJK odd width', '日本語', 5, '日本…'],
    ['CJK width 2', '日本語', 2, '…'],
    ['mixed', 'ab日本', 4, 'ab…'],
  ])('%s: %j in %d → %j', (_n, s, w, out) => {
    expect(truncate(s, w)).toBe(out);
    expect(strWidth(truncate(s, w))).toBeLessThanOrEqual(w);
  });

  it('cuts at the start (file:line) or the middle', () => {
    expect(truncate('app/images/handler.lua:42', 15, '…', 'start')).toBe('…handler.lua:42');
    expect(strWidth(truncate('app/images/handler.lua:42', 14, '…', 'start'))).toBe(14);
    expect(truncate('abcdefghij', 7, '…', 'middle')).toBe('abc…hij');
    expect(truncate('日本語日本語', 5, '…', 'start')).toBe('…本語');
  });

  it('uses an ASCII ellipsis when asked', () => expect(truncate('hello world', 6, '~')).toBe('hello~'));

  it('pads to exact widths, CJK included', () => {
    expect(pad('ab', 5)).toBe('ab   ');
    expect(pad('ab', 5, 'right')).toBe('   ab');
    expect(pad('ab', 6, 'center')).toBe('  ab  ');
    expect(pad('日本', 6)).toBe('日本  ');
    for (const w of [0, 1, 2, 3, 4, 5, 9]) expect(strWidth(fit('日本語x', w))).toBe(w);
  });

  it('takes cells from either end without splitting wide characters', () => {
    expect(takeCells('日本語', 3)).toBe('日');
    expect(takeLastCells('日本語', 3)).toBe('語');
  });

  it('spreads left and right parts, the left giving way', () => {
    expect(spread('left', 'right', 12)).toBe('left   right');
    expect(spread('a long left part', 'right', 12)).toBe('a lon… right');
    expect(strWidth(spread('日本語日本語', 'r', 8))).toBe(8);
  });
});

describe('clean: worker text for the screen', () => {
  it.each([
    ['escape sequence', 'x\x1b]0;pwned\x07y', 'x\\x1b]0;pwned\\x07y'],
    ['newline and tab', 'a\nb\tc', 'a\\nb\\tc'],
    ['bidi override', 'a\u202eb', 'a\\u{202e}b'],
    ['C1', 'a\x9bb', 'a\\x9bb'],
    ['emoji (blessed: 1 cell, terminals: 2)', 'ok 😀', 'ok \\u{1f600}'],
    ['CJK kept', '日本', '日本'],
    ['format characters: soft hyphen, Arabic letter mark, tag characters', 'a\u00adb\u061cc\u{e0041}', 'a\\xadb\\u{61c}c\\u{e0041}'],
    ['emoji presentation outside the emoji blocks (blessed: 1 cell, terminals: 2)', '⌚⚡✅❌⭐', '\\u{231a}\\u{26a1}\\u{2705}\\u{274c}\\u{2b50}'],
    ['wide emoji blessed counts as 2 kept; text-presentation symbols kept', '🈁 ❤ ☺ ©', '🈁 ❤ ☺ ©'],
  ])('%s', (_n, s, out) => expect(clean(s)).toBe(out));

  it('is idempotent', () => {
    const once = clean('x\x1b[31m😀\u202e\n⚡\u00ad\u{e0041}');
    expect(clean(once)).toBe(once);
  });
});

describe('formatting to a width', () => {
  it.each<[number, number | undefined, string]>([
    [42, undefined, '42'], [12345, undefined, '12345'], [12345, 4, '12k'], [12345, 5, '12345'],
    [1_234_567, 5, '1.23M'], [1_234_567, 4, '1.2M'], [999_999, 4, '1M'], [0.5, undefined, '0.5'],
    [-2500, 5, '-2500'], [-25_000, 5, '-25k'], [Infinity, undefined, 'inf'],
  ])('count %d in %s cells → %s', (n, w, out) => expect(fmtCount(n, w)).toBe(out));

  it.each<[number, number | undefined, string]>([
    [0, undefined, '0'], [0.00042, undefined, '0.4µs'], [0.42, undefined, '420µs'], [3.14159, undefined, '3.14ms'],
    [3.14159, 5, '3.1ms'], [240, 6, '240ms'], [1820, undefined, '1.82s'], [65_000, undefined, '1m05s'],
    [65_000, 2, '1m'], [3 * 3_600_000 + 120_000, undefined, '3h02m'], [2 * 86_400_000 + 3 * 3_600_000, undefined, '2d03h'],
    [-1, undefined, '-'],
  ])('duration %d ms in %s cells → %s', (ms, w, out) => expect(fmtDuration(ms, w === undefined ? {} : { width: w })).toBe(out));

  it('says us without UTF-8', () => expect(fmtDuration(0.42, { unicode: false })).toBe('420us'));

  it('formats rates, percentages, bytes and clock times', () => {
    expect(fmtRate(1250)).toBe('1250/s');
    expect(fmtRate(1250, 6)).toBe('1250/s');
    expect(fmtRate(12_500, 6)).toBe('13k/s');
    expect(fmtRate(85.5, 6)).toBe('85.5/s');
    expect(fmtPercent(0.425)).toBe('42.5%');
    expect(fmtPercent(0.425, 3)).toBe('43%');
    expect(fmtBytes(512)).toBe('512B');
    expect(fmtBytes(1536)).toBe('1.5KiB');
    expect(fmtClock(Date.UTC(2025, 0, 1, 9, 5, 7, 42), { utc: true, millis: true })).toBe('09:05:07.042');
  });
});

describe('paint', () => {
  const colour = makeTheme({ color: true, unicode: true });
  const mono = makeTheme({ color: false, unicode: true });

  it('pads and clips to the width, the row role filling it', () => {
    expect(paint(line('abc'), 5, colour)).toBe('abc  ');
    expect(paint(line('abcdef'), 4, colour)).toBe('abcd');
    expect(paint(line('abc', 'selected'), 5, colour)).toBe('\x1b[7mabc\x1b[m\x1b[7m  \x1b[m');
  });

  it('colours thresholds, and only bold/reverse without colour', () => {
    const row = line([span('1', 'ok'), span('2', 'warn'), span('3', 'bad')]);
    expect(paint(row, 3, colour)).toBe('\x1b[32m1\x1b[m\x1b[1;33m2\x1b[m\x1b[1;31m3\x1b[m');
    expect(paint(row, 3, mono)).toBe('1\x1b[1m2\x1b[m\x1b[1;7m3\x1b[m');
  });

  it('underlines a flagged cell of a reversed row instead of cancelling the reverse', () => {
    expect(paint(line([span('x', 'bad')], 'selected'), 1, mono)).toBe('\x1b[1;4;7mx\x1b[m');
  });

  it('escapes worker text even when a widget forgot to', () => {
    expect(paint(line('a\x1b[2Jb'), 9, colour)).toBe('a\\x1b[2Jb');
  });

  it('a request line full of ⚡ cannot spill into the next row: nothing a terminal draws wider than blessed counts', () => {
    const out = paint(line(`GET /${'⚡'.repeat(40)}\u00ad\u061c`), 20, mono);
    expect(out).toBe('GET /\\u{26a1}\\u{26a1');
    expect(out).not.toMatch(/[\p{Emoji_Presentation}\p{Cf}]/u);
  });

  it('fits spans to a width, padding on the side asked', () => {
    expect(fitSpans([span('ab', 'ok'), span('cd')], 3)).toEqual([{ text: 'ab', role: 'ok' }, { text: 'c' }]);
    expect(fitSpans([span('ab')], 4, 'right')).toEqual([{ text: '  ' }, { text: 'ab' }]);
  });

  it.each<[number, 'ok' | 'warn' | 'bad']>([[5, 'ok'], [50, 'warn'], [80, 'bad'], [99, 'bad']])('level of %d', (v, l) => {
    expect(level(v, { warn: 50, bad: 80 })).toBe(l);
  });

  it('levels where lower is worse', () => {
    expect(level(0.9, { warn: 0.5, bad: 0.2, lowerIsWorse: true })).toBe('ok');
    expect(level(0.1, { warn: 0.5, bad: 0.2, lowerIsWorse: true })).toBe('bad');
  });
});
