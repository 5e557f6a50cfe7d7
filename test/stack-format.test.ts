// `stack --locals` text: proxies and unavailable locals say what they are, library upvalues are
// hidden (and counted) unless asked for.
import { describe, expect, it } from 'vitest';
import { fitLines, formatStack } from '../cli/format/stack.js';
import { renderValue } from '../cli/format/value.js';
import type { Lua } from '../probe/protocol-types.js';

const frames: Lua.StackFrame[] = [{
  level: 0, function: 'handlers.slow', called_as: 'h', source: '/app/demo_app.lua', line: 41, linedefined: 39, what: 'Lua',
  locals: [
    { name: 'n', value: { type: 'number', value: 42 } },
    { name: 'err', value: { type: 'unavailable' } },
  ],
  upvalues: [
    { name: 'var', value: { type: 'proxy', value: 'ngx.var' } },
    { name: 'sleep', value: { type: 'function', value: 'function [C]' }, library: true },
    { name: 'cjson', value: { type: 'table', ref: 't1', entries: [] }, library: true },
    { name: 'reply', value: { type: 'function', value: 'function /app/demo_app.lua:28' } },
  ],
}];

describe('stack text', () => {
  it.each([
    [{ type: 'proxy', value: 'ngx.var' }, 'ngx.var (proxy)'],
    [{ type: 'proxy', value: 'table with __index/__newindex functions' }, 'table with __index/__newindex functions (proxy)'],
    [{ type: 'unavailable' }, '<unavailable: not used from here on>'],
  ] as [Lua.Value, string][])('renders %j as %s', (v, text) => {
    expect(renderValue(v)).toBe(text);
  });

  it('hides library upvalues by default and says how many', () => {
    const text = formatStack(frames);
    expect(text.split('\n')).toEqual([
      '#0 handlers.slow at /app/demo_app.lua:41',
      '    n = 42',
      '    (not used from here on, not shown: err)',
      '    (upvalue) var = ngx.var (proxy)',
      '    (upvalue) reply = function /app/demo_app.lua:28',
      '    (2 library upvalues hidden)',
      '2 upvalues of library code hidden (C, ngx.*, modules): --all-upvalues',
    ]);
  });

  it('shows them all when asked', () => {
    const text = formatStack(frames, 100, null, { allUpvalues: true });
    expect(text).toContain('    (upvalue) sleep = function [C]');
    expect(text).toContain('    (upvalue) cjson = {}');
    expect(text).not.toMatch(/hidden/);
  });
});

describe('stack text fits the output', () => {
  it('cuts every line to the width: values at their end, a frame line keeps its number, name and file:line', () => {
    const long = '/very/long/path/to/the/application/tree/that/goes/on/and/on/demo_app.lua';
    const frames = [{
      level: 4, function: 'handlers.slow', source: long, line: 41, what: 'Lua',
      locals: [{ name: 'big', value: { type: 'string', value: 'x'.repeat(300) } }],
      upvalues: [{ name: 'cfg', value: { type: 'table', entries: Array.from({ length: 20 }, (_, i) => ({ key: { type: 'string', value: `key${i}` }, value: { type: 'number', value: i } })) } }],
    }] as unknown as Lua.StackFrame[];
    const text = formatStack(frames, undefined, null, { fit: 80 });
    const lines = text.split('\n');
    for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(80);
    expect(lines[0]).toMatch(/^#4 handlers\.slow at ….*\/demo_app\.lua:41$/);
    expect(lines[1]).toMatch(/^    big = "x+…$/);
    // without fit (--wide) nothing is cut
    expect(formatStack(frames, undefined, null, {}).split('\n')[0]).toBe(`#4 handlers.slow at ${long}:41`);
  });
});

describe('lines naming a place fit the output', () => {
  it('fitLines keeps file:line and what follows it, and cuts other lines at their end', () => {
    const long = '/very/long/path/to/the/application/tree/that/goes/on/and/on/bp_cli_app.lua';
    const text = [`bp 1 hit on worker 4242 at ${long}:12 GET /x`, `  #0 handler at ${long}:12`, `      big = "${'y'.repeat(200)}"`].join('\n');
    const out = fitLines(text, 80).split('\n');
    for (const l of out) expect([...l].length, l).toBeLessThanOrEqual(80);
    expect(out[0]).toMatch(/^bp 1 hit on worker 4242 at ….*\/bp_cli_app\.lua:12 GET \/x$/);
    expect(out[1]).toMatch(/^ {2}#0 handler at ….*\/bp_cli_app\.lua:12$/);
    expect(out[2]).toMatch(/^ {6}big = "y+…$/);
    expect(fitLines(text, undefined)).toBe(text);
  });
});
