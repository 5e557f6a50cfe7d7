// Pure pieces of the CLI: durations, value rendering, stack, task and table formatting.
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../cli/duration.js';
import { UsageError } from '../cli/errors.js';
import { formatCoroutines, requestText } from '../cli/format/coroutines.js';
import { formatStack } from '../cli/format/stack.js';
import { formatTasks, type TaskRow } from '../cli/format/tasks.js';
import { renderValue } from '../cli/format/value.js';
import type { Lua } from '../probe/protocol-types.js';

describe('parseDuration', () => {
  it.each([
    ['100ms', 100], ['2s', 2000], ['1m', 60_000], ['1.5s', 1500], ['3', 3000], ['250us', 0.25], ['1h', 3_600_000], [' 5ms ', 5],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'ms', '10x', '-1s', '1 2s', 'fast'])('rejects %j as a usage error', (text) => {
    expect(() => parseDuration(text, '--older-than')).toThrow(UsageError);
  });
});

const str = (value: string, extra: Partial<Lua.Value> = {}): Lua.Value => ({ type: 'string', value, ...extra });
const num = (value: number): Lua.Value => ({ type: 'number', value });
const tbl = (entries: [Lua.Value, Lua.Value][], extra: Partial<Lua.Value> = {}): Lua.Value =>
  ({ type: 'table', entries: entries.map(([key, value]) => ({ key, value })), ...extra });

describe('renderValue', () => {
  it.each<[string, Lua.Value, string]>([
    ['nil', { type: 'nil' }, 'nil'],
    ['boolean', { type: 'boolean', value: false }, 'false'],
    ['number', num(3.5), '3.5'],
    ['string, quoted and escaped', str('a"b\n'), '"a\\"b\\n"'],
    ['truncated string with its length', str('abc', { truncated: true, length: 1000 }), '"abc…" (1000 bytes)'],
    ['empty table', tbl([]), '{}'],
    ['identifier keys bare, others bracketed', tbl([[str('user'), str('bob')], [num(1), num(2)], [str('a b'), { type: 'boolean', value: true }]]),
      '{user="bob", [1]=2, ["a b"]=true}'],
    ['nested tables', tbl([[str('ctx'), tbl([[str('n'), num(3)]])]]), '{ctx={n=3}}'],
    ['truncated table', tbl([[num(1), num(1)]], { truncated: true }), '{[1]=1, …}'],
    ['a "more" entry', tbl([[num(1), num(1)], [{ type: 'more' }, num(48)]]), '{[1]=1, …}'],
    ['cycle', tbl([[str('self'), { type: 'cycle', ref: 't1' }]], { ref: 't1' }), '{self=<cycle t1>}'],
    ['function', { type: 'function', value: 'function /app/h.lua:12' }, 'function /app/h.lua:12'],
    ['cdata scalar', { type: 'cdata', ctype: 'int64_t', value: '5LL' }, 'cdata<int64_t>: 5LL'],
    ['cdata pointer', { type: 'cdata', ctype: 'struct foo *' }, 'cdata<struct foo *>'],
    ['userdata', { type: 'userdata' }, 'userdata'],
    ['thread', { type: 'thread', value: 'thread: 0x1' }, 'thread: thread: 0x1'],
  ])('%s', (_name, value, text) => expect(renderValue(value)).toBe(text));

  it('cuts the whole line at the width with a mark', () => {
    const long = tbl(Array.from({ length: 50 }, (_, i) => [num(i), str('xxxxxxxx')] as [Lua.Value, Lua.Value]));
    const out = renderValue(long, 40);
    expect(out).toHaveLength(40);
    expect(out.endsWith('…')).toBe(true);
  });
});

describe('formatStack', () => {
  it('prints frames like gdb with locals, upvalues and varargs indented', () => {
    const frames: Lua.StackFrame[] = [
      { level: 0, function: 'handler', source: '/app/h.lua', line: 42, what: 'Lua',
        locals: [{ name: 'n', value: num(3) }], upvalues: [{ name: 'cache', value: tbl([]) }],
        varargs: [str('x'), num(1)] },
      { level: 1, function: 'pcall', source: '=[C]', line: -1, what: 'C' },
    ];
    expect(formatStack(frames)).toBe([
      '#0 handler at /app/h.lua:42',
      '    n = 3',
      '    (upvalue) cache = {}',
      '    ... = "x", 1',
      '#1 pcall at =[C]',
    ].join('\n'));
  });
});

describe('request text', () => {
  it('in the coroutines table: its own column, long ones cut so the top frame stays aligned', () => {
    const row = (id: number, request: Lua.Request | null) => ({
      id, kind: 'request', state: 'suspended', wait: { kind: 'ngx.sleep' as const }, request,
      frames: [{ function: 'sleep', source: '=[C]', line: -1 }],
    });
    const long = { method: 'GET', uri: `/search?q=${'x'.repeat(100)}` };
    const out = formatCoroutines([{ pid: 7, coroutines: [row(1, { method: 'POST', uri: '/park?kind=sleep' }), row(2, null), row(3, long)] }]);
    const lines = out.split('\n');
    expect(lines[1]).toMatch(/ POST \/park\?kind=sleep +sleep =\[C\]$/);
    expect(lines[2]).toMatch(/ngx\.sleep +- +sleep =\[C\]$/);
    const at = lines[0]!.indexOf('top frame');
    for (const l of lines.slice(1)) expect(l.slice(at)).toBe('sleep =[C]');
    expect(requestText(long)).toHaveLength(48);
    expect(requestText(long).endsWith('…')).toBe(true);
    expect(requestText(null)).toBe('-');
  });

  it('heads the stack when known', () => {
    const frames: Lua.StackFrame[] = [{ level: 0, function: 'sleep', source: '=[C]', line: -1, what: 'C' }];
    expect(formatStack(frames, 100, { method: 'POST', uri: '/a?b=1' })).toBe('request POST /a?b=1\n#0 sleep at =[C]');
    expect(formatStack(frames, 100, null)).toBe('#0 sleep at =[C]');
  });
});

describe('formatTasks', () => {
  const task = (id: number): TaskRow => ({
    id, runtime: 'slow', method: 'work', state: 'pending', age_ms: 1234.5, req_len: 3, req_preview: 'abc',
    coroutine: { id: id + 100, frames: [{ function: 'wait', source: 'x.lua', line: 7 }] },
  });

  it('says how many tasks a cut-short worker has in all', () => {
    const text = formatTasks([
      { pid: 42, tasks: [task(1), task(2)], total: 100001, truncated: true },
      { pid: 43, tasks: [task(3)], total: 1, truncated: false },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^worker\s+task\s+runtime/);
    expect(lines.filter((l) => l.startsWith('task '))).toHaveLength(3);
    expect(lines.at(-1)).toBe('worker 42: 2 of 100001 tasks listed (oldest first); --max N or --all for more');
    expect(text).not.toContain('worker 43:');
  });

  it('with none listed, says whether there are any', () => {
    expect(formatTasks([{ pid: 42, tasks: [], total: 0, truncated: false }])).toBe('(no pending tasks)');
    expect(formatTasks([{ pid: 42, tasks: [], total: 5, truncated: true }]))
      .toBe('(no tasks listed)\nworker 42: 0 of 5 tasks listed (oldest first); --max N or --all for more');
  });
});
