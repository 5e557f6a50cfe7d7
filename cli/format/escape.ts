// Text from a worker is data someone else chose: a client's User-Agent in a logpoint, a request
// URI, a local's value, a chunk name, a function name, an agent's error message. Printed raw, its
// escape sequences would retitle the operator's terminal, clear the screen, rewrite lines with a
// carriage return or reorder them with bidi overrides. Everything printed for people goes
// through here: C0 controls, DEL and C1 controls (U+0080–U+009F) become \xNN (\n, \r, \t by
// name), line separators and every format character (\p{Cf}: bidi and invisible marks, the soft
// hyphen, tag characters U+E0000–E007F) \u{NNNN}. Backslashes stay as they are. --json stays
// JSON: JSON.stringify escapes C0 already, jsonText also the rest, as \uNNNN (a surrogate pair
// past U+FFFF: the same data for any JSON reader).

// C0 and DEL, C1, line/paragraph separators, zero-width and bidi marks, overrides, isolates, BOM,
// and the other format characters.
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\p{Cf}]/gu;
const UNSAFE_BUT_NEWLINE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\p{Cf}]/gu;
const JSON_UNSAFE = /[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\p{Cf}]/gu;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/** One line of worker text, safe for a terminal: every control character escaped, newlines too. */
export function termText(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/** Lines for a terminal: like termText, but the newlines that separate them stay. */
export function termLines(s: string): string {
  return s.replace(UNSAFE_BUT_NEWLINE, escapeChar);
}

/** Human output to stdout, escaped for the terminal (the last line of defence: formatters
 * escape each field first, so a newline inside one never starts a line of its own). */
export function writeTerm(text: string): void {
  process.stdout.write(termLines(text));
}

/** Our own colour: SGR sequences exactly as table.ts paints them (ESC [ digits m). */
const SGR_RE = /\x1b\[[0-9;]*m/g;

/** Like termLines, but the SGR colour sequences in `s` pass (a table painted for a TTY): every
 * other control character is escaped, so worker text a formatter forgot to escape can at
 * most change a colour, never move the cursor, retitle or clear the terminal. */
export function styledLines(s: string): string {
  let out = '';
  let last = 0;
  for (const m of s.matchAll(SGR_RE)) {
    out += termLines(s.slice(last, m.index)) + m[0];
    last = m.index + m[0].length;
  }
  return out + termLines(s.slice(last));
}

/** writeTerm for painted output (styledLines). */
export function writeStyled(text: string): void {
  process.stdout.write(styledLines(text));
}

const jsonEscape = (c: string): string => {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
};

/** JSON with DEL, C1 and the invisible/bidi/format characters escaped as \uNNNN too. */
export function jsonText(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').replace(JSON_UNSAFE, jsonEscape);
}

/** One NDJSON line. */
export function jsonLine(value: unknown): string {
  return jsonText(value);
}
