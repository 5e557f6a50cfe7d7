// One-row charts for the queue monitor, written here rather than taken from blessed-contrib (a
// box and 14 dependencies for ~15 lines each).
// - A sparkline, newest sample on the right: ▁▂▃▄▅▆▇█ on UTF-8 terminals, _.:-=+*# on the others
//   (style.Glyphs.spark). Zero shows as the lowest mark and anything above zero at least one
//   step higher, so an almost idle queue looks different from an idle one; a gap in the samples
//   (undefined, NaN) shows as a blank.
// - A gauge: how full something is (queue depth against max_queue), in eighths of a cell
//   (▏▎▍▌▋▊▉█), or whole cells of # with + for a half on other terminals.
import { level, span, type Span, type Thresholds } from '../style.js';

export interface SparkOptions {
  /** Cells; the last `width` samples are drawn, fewer are padded on the left. */
  width: number;
  /** Eight marks, lowest first. */
  marks: string;
  /** Bottom of the scale (default 0). */
  min?: number;
  /** Top of the scale (default: the largest sample drawn); a fixed top compares panes. */
  max?: number;
}

/** The mark index 0..7 of each drawn sample, or -1 for a gap. */
export function sparkLevels(values: readonly (number | undefined)[], opts: Omit<SparkOptions, 'marks'>): number[] {
  const shown = values.slice(Math.max(0, values.length - opts.width));
  const nums = shown.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const min = opts.min ?? 0;
  const max = opts.max ?? Math.max(min, ...nums);
  const levels = shown.map((v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return -1;
    if (v <= min || max <= min) return 0;
    const ratio = Math.min(1, (v - min) / (max - min));
    return 1 + Math.min(6, Math.floor(ratio * 7));
  });
  return [...new Array<number>(opts.width - levels.length).fill(-1), ...levels];
}

/** The sparkline as plain text. */
export function sparkline(values: readonly (number | undefined)[], opts: SparkOptions): string {
  const marks = [...opts.marks];
  return sparkLevels(values, opts).map((l) => (l < 0 ? ' ' : marks[l] ?? ' ')).join('');
}

/** The sparkline as spans, each sample coloured by where it stands against `thresholds`. */
export function sparkSpans(values: readonly (number | undefined)[], opts: SparkOptions & { thresholds?: Thresholds }): Span[] {
  const marks = [...opts.marks];
  const shown = values.slice(Math.max(0, values.length - opts.width));
  const pad = opts.width - shown.length;
  const levels = sparkLevels(values, opts);
  const spans: Span[] = [];
  levels.forEach((l, i) => {
    const v = i < pad ? undefined : shown[i - pad];
    const role = opts.thresholds && typeof v === 'number' ? level(v, opts.thresholds) : undefined;
    const text = l < 0 ? ' ' : marks[l] ?? ' ';
    const prev = spans[spans.length - 1];
    if (prev && prev.role === role) prev.text += text;
    else spans.push(span(text, role));
  });
  return spans;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** `ratio` (0..1, clamped) of `width` cells filled, padded with blanks to `width`. */
export function gauge(ratio: number, width: number, unicode: boolean): string {
  if (width <= 0) return '';
  const r = Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 0;
  const cells = r * width;
  const full = Math.floor(cells);
  const frac = cells - full;
  let part = '';
  if (full < width) part = unicode ? EIGHTHS[Math.floor(frac * 8)]! : frac >= 0.5 ? '+' : '';
  const text = (unicode ? '█' : '#').repeat(full) + part;
  return text + ' '.repeat(width - [...text].length);
}

/** The gauge as one span coloured by where `value` stands against `thresholds`. */
export function gaugeSpans(value: number, max: number, width: number, unicode: boolean, thresholds?: Thresholds): Span[] {
  const text = gauge(max > 0 ? value / max : 0, width, unicode);
  return [span(text, thresholds ? level(value, thresholds) : undefined)];
}
