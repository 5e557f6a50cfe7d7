// The key-hint footer (one line, the most useful keys first, the rest dropped when narrow) and
// the help overlay: every key of the shell and of the focused pane, then the colour legend, so
// that what red or a reversed cell means is one `?` away (htop's F1 screen does this well).
import { line, span, type Line, type Role, type Span, type Theme } from '../style.js';
import { clean, fit, strWidth, truncate } from '../text.js';
import type { Key } from '../term.js';
import type { KeyHelp } from '../view.js';

/** The footer: `key help` pairs that fit in `width`, in order. */
export function footerLine(hints: KeyHelp[], width: number): Line {
  const spans: Span[] = [];
  let used = 0;
  for (const h of hints) {
    const need = (used ? 2 : 1) + strWidth(h.keys) + 1 + strWidth(h.help);
    if (used + need > width) break;
    spans.push(span(used ? '  ' : ' '), span(h.keys, 'key'), span(` ${h.help}`));
    used += need;
  }
  return line(spans);
}

export interface HelpSection { title: string; keys: KeyHelp[] }

/** One line of the colour legend: a sample painted with `role` and what it means. */
export interface LegendEntry { role: Role; sample: string; meaning: string }

export const DEFAULT_LEGEND: LegendEntry[] = [
  { role: 'ok', sample: 'ok', meaning: 'below the warning threshold' },
  { role: 'warn', sample: 'warn', meaning: 'past the warning threshold' },
  { role: 'bad', sample: 'bad', meaning: 'past the alarm threshold (queue full, slow, errors)' },
  { role: 'new', sample: 'new', meaning: 'a row that appeared in the last seconds' },
  { role: 'selected', sample: '>selected', meaning: 'the selected row of the focused pane' },
  { role: 'dim', sample: 'dim', meaning: 'finished, idle or secondary' },
];

export class HelpOverlay {
  open = false;
  private offset = 0;
  private page = 10;

  /** While open: j/k/arrows/PgUp/PgDn scroll, Esc ? q close; every key stays here. */
  handleKey(key: Key): boolean {
    if (!this.open) return false;
    switch (key) {
      case 'escape': case '?': case 'q': this.open = false; break;
      case 'j': case 'down': this.offset++; break;
      case 'k': case 'up': this.offset--; break;
      case 'pagedown': case 'space': this.offset += this.page; break;
      case 'pageup': this.offset -= this.page; break;
      case 'g': case 'home': this.offset = 0; break;
      default: break;
    }
    this.offset = Math.max(0, this.offset);
    return true;
  }

  toggle(): void {
    this.open = !this.open;
    this.offset = 0;
  }

  /** The framed overlay, exactly `height` rows of `width` cells. */
  render(sections: HelpSection[], legend: LegendEntry[], width: number, height: number, theme: Theme): Line[] {
    const g = theme.glyphs;
    const inner = Math.max(0, width - 4);
    const body = helpBody(sections, legend, inner, theme);
    this.page = Math.max(1, height - 2);
    this.offset = Math.min(this.offset, Math.max(0, body.length - this.page));
    const shown = body.slice(this.offset, this.offset + this.page);
    const more = body.length > this.page ? ` ${this.offset + 1}-${this.offset + shown.length}/${body.length} ` : '';
    const title = truncate(` Help${g.sep}Esc or ? closes `, Math.max(0, width - 2 - strWidth(more)), g.ellipsis);
    const rule = g.hline.repeat(Math.max(0, width - 2 - strWidth(title) - strWidth(more)));
    const rows: Line[] = [line([span(truncate(g.tl + title + rule + more + g.tr, width), 'bold')])];
    for (let i = 0; i < height - 2; i++) {
      const l = shown[i] ?? line('');
      const used = l.spans.reduce((n, s) => n + strWidth(s.text), 0);
      rows.push(line([span(`${g.vline} `), ...l.spans, span(' '.repeat(Math.max(0, inner - used))), span(` ${g.vline}`)]));
    }
    rows.push(line([span(g.bl + g.hline.repeat(Math.max(0, width - 2)) + g.br)]));
    return rows.slice(0, height);
  }
}

/** One key and its help in `width` cells, the keys in a `keyWidth` column. */
function keyCell(k: KeyHelp, keyWidth: number, width: number, ellipsis: string): Span[] {
  const keys = fit(clean(k.keys), keyWidth, 'left', ellipsis);
  const help = fit(clean(k.help), Math.max(0, width - keyWidth - 1), 'left', ellipsis);
  return [span(keys, 'key'), span(` ${help}`)];
}

/** The overlay's rows: each section's keys (two to a row when there is room), then the legend. */
function helpBody(sections: HelpSection[], legend: LegendEntry[], inner: number, theme: Theme): Line[] {
  const g = theme.glyphs;
  const twoColumns = inner >= 64;
  const colWidth = twoColumns ? Math.floor((inner - 2) / 2) - 1 : inner - 2;
  const body: Line[] = [];
  for (const s of sections) {
    if (s.keys.length === 0) continue;
    const keyWidth = Math.min(14, Math.max(...s.keys.map((k) => strWidth(k.keys))));
    body.push(line([span(fit(clean(s.title), inner, 'left', g.ellipsis), 'header')]));
    const step = twoColumns ? 2 : 1;
    for (let i = 0; i < s.keys.length; i += step) {
      const spans = [span('  '), ...keyCell(s.keys[i]!, keyWidth, colWidth, g.ellipsis)];
      const right = twoColumns ? s.keys[i + 1] : undefined;
      if (right) spans.push(span('  '), ...keyCell(right, keyWidth, colWidth, g.ellipsis));
      body.push(line(spans));
    }
  }
  body.push(line([span(fit(theme.color ? 'Colours' : 'Marks (NO_COLOR: bold and reverse only)', inner, 'left', g.ellipsis), 'header')]));
  const sampleWidth = Math.max(...legend.map((e) => strWidth(e.sample)));
  for (const e of legend) {
    const meaning = truncate(clean(e.meaning), Math.max(0, inner - sampleWidth - 3), g.ellipsis);
    body.push(line([span('  '), span(fit(e.sample, sampleWidth), e.role), span(` ${meaning}`)]));
  }
  return body;
}
