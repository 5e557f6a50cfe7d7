// Moving a cursor through a list of rows, shared by the table and the tree: the keys users of
// less, vim, htop and k9s expect, and a scroll offset that moves as little as possible.
import type { Key } from '../term.js';
import type { KeyHelp } from '../view.js';

/**
 * The index `key` moves to from `index` in a list of `count` rows with `page` rows on screen, or
 * undefined when `key` is not a movement key.
 */
export function navigate(key: Key, index: number, count: number, page: number): number | undefined {
  if (count <= 0) return undefined;
  const last = count - 1;
  const step = Math.max(1, page - 1);
  let next: number;
  switch (key) {
    case 'j': case 'down': next = index + 1; break;
    case 'k': case 'up': next = index - 1; break;
    case 'g': case 'home': next = 0; break;
    case 'G': case 'end': next = last; break;
    case 'pagedown': case 'C-f': next = index + step; break;
    case 'pageup': case 'C-b': next = index - step; break;
    case 'C-d': next = index + Math.max(1, page >> 1); break;
    case 'C-u': next = index - Math.max(1, page >> 1); break;
    default: return undefined;
  }
  return Math.min(last, Math.max(0, next));
}

/** The first visible row so that `index` shows in `height` rows, moving `offset` minimally. */
export function scrollTo(index: number, offset: number, height: number, count: number): number {
  if (height <= 0 || count <= height) return 0;
  let o = offset;
  if (index < o) o = index;
  if (index >= o + height) o = index - height + 1;
  return Math.min(Math.max(0, o), count - height);
}

export const NAV_HELP: KeyHelp[] = [
  { keys: 'j/k ↓/↑', help: 'move the selection' },
  { keys: 'g/G', help: 'first / last row' },
  { keys: 'PgUp/PgDn', help: 'page up / down' },
  { keys: 'C-u/C-d', help: 'half a page up / down' },
];
