// Captured Lua values (Lua.Value) in one compact line: {n=3, user="bob", …}. Strings cut by
// the agent show their full length, cycles show the table they point back to, and the whole
// rendering is cut at `width` characters. Worker text in it is escaped for the terminal.
import type { Lua } from '../../probe/protocol-types.js';
import { termText } from './escape.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function quote(s: string): string {
  return termText(JSON.stringify(s));
}

function key(k: Lua.Value): string {
  if (k.type === 'string' && typeof k.value === 'string' && IDENT.test(k.value)) return k.value;
  return `[${render(k)}]`;
}

function table(v: Lua.Value): string {
  const parts = (Array.isArray(v.entries) ? v.entries : []).map((e) => (e.key.type === 'more' ? '…' : `${key(e.key)}=${render(e.value)}`));
  if (v.truncated && parts[parts.length - 1] !== '…') parts.push('…');
  return parts.length ? `{${parts.join(', ')}}` : '{}';
}

function render(v: Lua.Value): string {
  switch (v.type) {
    case 'nil':
      return 'nil';
    case 'boolean':
    case 'number':
      return termText(String(v.value));
    case 'string': {
      const s = quote(String(v.value ?? ''));
      return v.truncated ? `${s.slice(0, -1)}…" (${v.length ?? '?'} bytes)` : s;
    }
    case 'table':
      return table(v);
    case 'cycle':
      return termText(`<cycle ${v.ref ?? '?'}>`);
    case 'more':
      return '…';
    case 'cdata':
      return termText(v.value === undefined ? `cdata<${v.ctype ?? '?'}>` : `cdata<${v.ctype ?? '?'}>: ${String(v.value)}`);
    case 'function':
      return v.value === undefined ? 'function' : termText(String(v.value));
    case 'proxy':
      // read through metamethods: raw it is empty, which says nothing
      return termText(`${String(v.value ?? 'table')} (proxy)`);
    case 'unavailable':
      return '<unavailable: not used from here on>';
    default:
      return termText(v.value === undefined ? String(v.type) : `${v.type}: ${String(v.value)}`);
  }
}

/** One line, at most `width` characters (0: no limit). */
export function renderValue(v: Lua.Value, width = 120): string {
  const s = render(v);
  return width > 0 && s.length > width ? s.slice(0, width - 1) + '…' : s;
}
