// Durations on the command line: 250ms, 2s, 1.5m, 1h (a bare number is seconds).
import { UsageError } from './errors.js';

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds for `text`, or a UsageError naming `what`. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(us|ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid ${what} '${text}' (expected e.g. 100ms, 2s, 1m)`);
  return Number(m[1]) * UNITS[m[2] ?? 's']!;
}
