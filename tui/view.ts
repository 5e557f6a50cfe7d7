// The contract between the shell (layout, focus, key routing, one render per tick) and what fills
// a pane (PaneView, not to be confused with store/'s View: that one holds data, this one draws it).
// A pane view takes plain data through its own setData-style methods, never touches the screen
// and renders itself as painted-later rows for whatever box it is given.
import type { Line, Theme } from './style.js';
import type { Key } from './term.js';

export interface RenderContext {
  theme: Theme;
  /** The pane has the keyboard (selection shows in reverse, otherwise underlined). */
  focused: boolean;
  /** Milliseconds, from the shell's clock (fake in tests). */
  now: number;
}

/** One line of the help overlay and, for the first few, of the footer. */
export interface KeyHelp { keys: string; help: string }

export interface PaneView {
  /** At most `height` rows for a box `width` cells wide (shorter rows are padded). */
  render(width: number, height: number, ctx: RenderContext): Line[];
  /** true if the key was used (the shell stops routing it). */
  handleKey?(key: Key): boolean;
  keyHelp?(): KeyHelp[];
}

/** What `/` filters: a view that can narrow its rows. */
export interface Filterable {
  readonly filter: Filter | undefined;
  setFilter(filter: Filter | undefined): void;
}

export interface Filter {
  /** As typed, including a leading '!'. */
  readonly text: string;
  readonly invert: boolean;
  test(haystack: string): boolean;
}

export function isFilterable(v: unknown): v is Filterable {
  return typeof (v as Filterable | undefined)?.setFilter === 'function';
}
