// Numbers, rates and durations in as few cells as a column has. Each formatter tries the most
// precise form first and gives up digits, never the unit, until the text fits `width`; when
// nothing fits it returns the shortest form and lets the column cut it.
import { strWidth } from './text.js';

const SI = ['', 'k', 'M', 'G', 'T', 'P'];

function firstFitting(forms: string[], width: number | undefined): string {
  if (width === undefined) return forms[0]!;
  return forms.find((f) => strWidth(f) <= width) ?? forms[forms.length - 1]!;
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** Candidates for |n| ≥ 1000 scaled by 1000s: 12.35k, 12.3k, 12k. */
function scaled(n: number): string[] {
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  let i = 0;
  while (v >= 999.95 && i < SI.length - 1) {
    v /= 1000;
    i++;
  }
  const unit = SI[i]!;
  return [2, 1, 0].map((d) => sign + trimZeros(v.toFixed(d)) + unit);
}

/** A count: 42, 12345, or scaled when it does not fit: 12.3k, 4.5M. */
export function fmtCount(n: number, width?: number): string {
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : n < 0 ? '-inf' : '-';
  const plain = Number.isInteger(n) ? String(n) : trimZeros(n.toFixed(2));
  if (Math.abs(n) < 1000) return firstFitting([plain, trimZeros(n.toFixed(1)), n.toFixed(0)], width);
  return firstFitting([plain, ...scaled(n)], width);
}

/** A rate per second: 0.5/s, 1.2k/s. */
export function fmtRate(perSec: number, width?: number): string {
  const room = width === undefined ? undefined : Math.max(1, width - 2);
  return `${fmtCount(perSec, room)}/s`;
}

/** A ratio 0..1 as a percentage: 7%, 42.5%. */
export function fmtPercent(ratio: number, width?: number): string {
  const p = ratio * 100;
  return firstFitting([`${trimZeros(p.toFixed(1))}%`, `${p.toFixed(0)}%`], width);
}

/** Bytes with binary units: 512B, 1.5KiB, 3MiB. */
export function fmtBytes(n: number, width?: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n}B`;
  return firstFitting([1, 0].map((d) => trimZeros(v.toFixed(d)) + units[i]!), width);
}

export interface DurationOptions {
  /** Cells available. */
  width?: number;
  /** `µs` needs a UTF-8 terminal; `us` otherwise. */
  unicode?: boolean;
}

/**
 * A duration given in milliseconds: 850µs, 12.3ms, 1.25s, 2m05s, 3h02m, 2d03h. Sub-millisecond
 * values matter here: a healthy FFI queue answers in microseconds.
 */
export function fmtDuration(ms: number, opts: DurationOptions = {}): string {
  const { width, unicode = true } = opts;
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms === 0) return '0';
  const two = (n: number) => String(Math.floor(n)).padStart(2, '0');
  let forms: string[];
  if (ms < 1) {
    const us = ms * 1000;
    const u = unicode ? 'µs' : 'us';
    forms = [`${trimZeros(us.toFixed(us < 10 ? 1 : 0))}${u}`, `${us.toFixed(0)}${u}`];
  } else if (ms < 1000) {
    forms = [2, 1, 0].map((d) => `${trimZeros(ms.toFixed(d))}ms`);
  } else if (ms < 60_000) {
    const s = ms / 1000;
    forms = [2, 1, 0].map((d) => `${trimZeros(s.toFixed(d))}s`);
  } else if (ms < 3_600_000) {
    const m = Math.floor(ms / 60_000);
    forms = [`${m}m${two((ms % 60_000) / 1000)}s`, `${m}m`];
  } else if (ms < 86_400_000) {
    const h = Math.floor(ms / 3_600_000);
    forms = [`${h}h${two((ms % 3_600_000) / 60_000)}m`, `${h}h`];
  } else {
    const d = Math.floor(ms / 86_400_000);
    forms = [`${d}d${two((ms % 86_400_000) / 3_600_000)}h`, `${d}d`];
  }
  return firstFitting(forms, width);
}

/** Time of day HH:MM:SS.mmm for an epoch in ms (UTC when `utc`, for tests and logs). */
export function fmtClock(epochMs: number, opts: { utc?: boolean; millis?: boolean } = {}): string {
  const d = new Date(epochMs);
  const [h, m, s, ms] = opts.utc
    ? [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  const base = [h, m, s].map((n) => String(n).padStart(2, '0')).join(':');
  return opts.millis ? `${base}.${String(ms).padStart(3, '0')}` : base;
}
