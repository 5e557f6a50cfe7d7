// cli/format/table.ts: tables that fit a width (cut cells, then leave out low-priority
// columns), --wide, colour only where asked, and the terminal checks that decide both.
import { describe, expect, it } from 'vitest';
import { styledLines } from '../cli/format/escape.js';
import { cellWidth, colorEnabled, ellipsize, formatTable, hiddenColumns, outputWidth, tableOptions, type Column } from '../cli/format/table.js';

const width = (s: string): number => Math.max(...s.split('\n').map(cellWidth));
// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[[0-9;]*m/;

const COLS: Column[] = [
  { title: 'pid', align: 'right' },
  { title: 'kind', priority: 2 },
  { title: 'wait', priority: 1, min: 6, compact: (c) => c.replace(/ \(.*\)$/, '') },
  { title: 'request', priority: 1, min: 10 },
  { title: 'frame', min: 16, elide: 'start' },
];
const ROWS = [
  ['4242', 'request', 'ffi (task 19602)', `GET /search?q=${'x'.repeat(60)}`, '/srv/app/lua/handlers/search.lua:41 handlers.search'],
  ['4243', 'timer', 'cosocket (receiveany)', '-', '/srv/app/lua/jobs.lua:7 refresh'],
];

describe('formatTable fits a width', () => {
  it.each([200, 120, 80, 60, 50, 40])('at %i columns no line is longer', (w) => {
    const out = formatTable(COLS, ROWS, { width: w });
    const floor = formatTable(COLS.filter((c) => !c.priority), ROWS.map((r) => [r[0]!, r[4]!]), { width: 1 });
    expect(width(out)).toBeLessThanOrEqual(Math.max(w, width(floor)));
  });

  it('cuts first: the short form of a cell, then an ellipsis (paths from the left, the file and line stay)', () => {
    const lines = formatTable(COLS, ROWS, { width: 80 }).split('\n');
    expect(lines[0]).toMatch(/^pid +kind +wait +request +frame$/);
    expect(lines[1]).toMatch(/^4242 +request +ffi +GET \/search\?q=x+… +…[^ ]*\.lua:41 handlers\.search$/);
    expect(lines[2]).toMatch(/ cosocket +- +…app\/lua\/jobs\.lua:7 refresh$/);
  });

  it('then leaves out the columns of the lowest priority, then the next', () => {
    expect(hiddenColumns(COLS, ROWS, 200)).toEqual([]);
    expect(hiddenColumns(COLS, ROWS, 60)).toEqual([]);
    expect(hiddenColumns(COLS, ROWS, 50)).toEqual(['kind']);
    expect(hiddenColumns(COLS, ROWS, 40)).toEqual(['kind', 'wait', 'request']);
    expect(formatTable(COLS, ROWS, { width: 40 }).split('\n')[0]).toMatch(/^pid +frame$/);
  });

  it('without a width (--wide, benchmarks) every column is whole', () => {
    const out = formatTable(COLS, ROWS);
    expect(out).toContain(`GET /search?q=${'x'.repeat(60)}`);
    expect(out).toContain('ffi (task 19602)');
    expect(out).not.toContain('…');
  });

  it('plain titles still work, numbers align right, text left', () => {
    expect(formatTable(['name', 'n'], [['a', '1'], ['bb', '22']])).toBe('name  n\na      1\nbb    22');
  });

  it.each<[string, number, 'end' | 'start', string]>([
    ['abcdef', 4, 'end', 'abc…'],
    ['abcdef', 4, 'start', '…def'],
    ['abc', 3, 'end', 'abc'],
    ['日本語テキスト', 5, 'end', '日本…'],
  ])('ellipsize(%j, %i, %s) = %j', (s, w, where, out) => {
    expect(ellipsize(s, w, where)).toBe(out);
    expect(cellWidth(ellipsize(s, w, where))).toBeLessThanOrEqual(w);
  });
});

describe('colour', () => {
  const cols: Column[] = [{ title: 'state', style: (c) => (c === 'dead' ? 'dim' : c === 'running' ? 'green' : undefined) }, { title: 'n' }];
  const rows = [['running', '1'], ['dead', '2'], ['suspended', '3']];

  it('paints the cell text, not its padding, only when asked; the layout is the same', () => {
    const plain = formatTable(cols, rows, { width: 80 });
    const painted = formatTable(cols, rows, { width: 80, color: true });
    expect(plain).not.toMatch(SGR);
    expect(painted).toContain('\x1b[32mrunning\x1b[0m  ');
    expect(painted).toContain('\x1b[2mdead\x1b[0m     ');
    expect(painted.replace(new RegExp(SGR.source, 'g'), '')).toBe(plain);
  });

  it.each<[string, { isTTY?: boolean; columns?: number }, NodeJS.ProcessEnv, boolean]>([
    ['a terminal', { isTTY: true }, {}, true],
    ['piped', { isTTY: false }, {}, false],
    ['NO_COLOR on a terminal', { isTTY: true }, { NO_COLOR: '1' }, false],
    ['an empty NO_COLOR is unset', { isTTY: true }, { NO_COLOR: '' }, true],
    ['TERM=dumb', { isTTY: true }, { TERM: 'dumb' }, false],
    ['FORCE_COLOR in a pipe', { isTTY: false }, { FORCE_COLOR: '1' }, true],
    ['NO_COLOR wins over FORCE_COLOR', { isTTY: false }, { FORCE_COLOR: '1', NO_COLOR: '1' }, false],
  ])('%s', (_name, out, env, on) => expect(colorEnabled(out, env)).toBe(on));

  it('the width: the terminal\'s, else $COLUMNS, else 80; --wide none', () => {
    expect(outputWidth({}, { isTTY: true, columns: 132 }, {})).toBe(132);
    expect(outputWidth({}, { isTTY: false }, {})).toBe(80);
    expect(outputWidth({}, { isTTY: false }, { COLUMNS: '100' })).toBe(100);
    expect(outputWidth({ wide: true }, { isTTY: true, columns: 132 }, {})).toBeUndefined();
    expect(tableOptions({}, { isTTY: false }, {})).toEqual({ width: 80, color: false });
  });

  it('styledLines lets our SGR colours through and escapes every other control', () => {
    expect(styledLines('\x1b[31mred\x1b[0m x\x1b]0;t\x07\x1b[2J\n')).toBe('\x1b[31mred\x1b[0m x\\x1b]0;t\\x07\\x1b[2J\n');
  });
});
