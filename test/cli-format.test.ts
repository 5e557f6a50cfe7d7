// Pure pieces of the CLI: durations, value rendering, stack, task and table formatting, and the
// escaping of worker text for the terminal.
import { describe, expect, it } from 'vitest';
import type { BreakpointEvent } from '../probe/breakpoints.js';
import { parseDuration } from '../cli/duration.js';
import { UsageError } from '../cli/errors.js';
import { formatCoroutines, requestText } from '../cli/format/coroutines.js';
import { jsonText, termLines, termText } from '../cli/format/escape.js';
import { describeSpec, formatEvent, formatHit, taskLine } from '../cli/format/hit.js';
import { formatStack } from '../cli/format/stack.js';
import { formatTable } from '../cli/format/table.js';
import { formatTasks, type TaskRow } from '../cli/format/tasks.js';
import { renderValue } from '../cli/format/value.js';
import { formatWorkers } from '../cli/format/workers.js';
import type { Lua } from '../probe/protocol-types.js';
import { readMode } from '../store/workers.js';

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
  it('in the coroutines table: its own column, long ones cut (80 columns) so the top frame stays aligned', () => {
    const row = (id: number, request: Lua.Request | null) => ({
      id, kind: 'request', state: 'suspended', wait: { kind: 'ngx.sleep' as const }, request,
      frames: [{ function: 'sleep', source: '=[C]', line: -1 }, { function: 'h', source: '/app/h.lua', line: 9 }], top_frame_index: 1,
    });
    const long = { method: 'GET', uri: `/search?q=${'x'.repeat(100)}` };
    const workers = [{ pid: 7, coroutines: [row(1, { method: 'POST', uri: '/park?kind=sleep' }), row(2, null), row(3, long)] }];
    const lines = formatCoroutines(workers, { width: 80 }).split('\n');
    expect(lines[1]).toMatch(/ POST \/park\?kind=sleep +\/app\/h\.lua:9 h$/);
    expect(lines[2]).toMatch(/ngx\.sleep +- +\/app\/h\.lua:9 h$/);
    expect(lines[3]).toMatch(/ GET \/search\?q=x+… +\/app\/h\.lua:9 h$/);
    const at = lines[0]!.indexOf('top frame');
    for (const l of lines.slice(1, 4)) {
      expect(l.slice(at)).toBe('/app/h.lua:9 h');
      expect([...l].length).toBeLessThanOrEqual(80);
    }
    // --wide: the whole request
    expect(formatCoroutines(workers)).toContain(`GET /search?q=${'x'.repeat(100)}  `);
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
    coroutine: { id: id + 100, frames: [{ function: 'wait', source: 'x.lua', line: 7 }], top_frame_index: 0 },
  });

  it('says how many tasks a cut-short worker has in all', () => {
    const text = formatTasks([
      { pid: 42, tasks: [task(1), task(2)], total: 100001, truncated: true },
      { pid: 43, tasks: [task(3)], total: 1, truncated: false },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^worker\s+task\s+call/);
    expect(lines.filter((l) => l.startsWith('task '))).toHaveLength(3);
    expect(lines.at(-1)).toBe('worker 42: 2 of 100001 tasks listed (oldest first); --max N or --all for more');
    expect(text).not.toContain('worker 43:');
  });

  it('a task with no age (libnffi built with NFFI_NO_INSTRUMENT) shows - in the age column', () => {
    // worker task call state AGE req-bytes coroutine ...
    const ageOf = (t: TaskRow) => formatTasks([{ pid: 42, tasks: [t], total: 1, truncated: false }]).split('\n')[1]!.trim().split(/\s+/)[4];
    expect(ageOf({ ...task(1), age_ms: null })).toBe('-');
    expect(ageOf(task(1))).toBe('1235');
  });

  it('with none listed, says whether there are any', () => {
    expect(formatTasks([{ pid: 42, tasks: [], total: 0, truncated: false }])).toBe('(no pending tasks)');
    expect(formatTasks([{ pid: 42, tasks: [], total: 5, truncated: true }]))
      .toBe('(no tasks listed)\nworker 42: 0 of 5 tasks listed (oldest first); --max N or --all for more');
  });
});

// What a terminal acts on: C0 but newline, DEL, C1, line separators, bidi and invisible marks.
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\p{Cf}]/u;
// A client's User-Agent that retitles the window, clears the screen, rewrites the line.
const EVIL = '\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202egnp.exe';
const EVIL_SHOWN = '\\x1b]0;pwned\\x07\\x1b[2J\\r\\x9b31m\\u{202e}gnp.exe';

describe('termText', () => {
  it.each<[string, string, string]>([
    ['plain text as it is', 'GET /items?id=3 user=bob', 'GET /items?id=3 user=bob'],
    ['backslashes as they are', 'C:\\path\\x1b', 'C:\\path\\x1b'],
    ['letters past ASCII as they are', 'héllo 日本 🎉', 'héllo 日本 🎉'],
    ['OSC title change', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
    ['CSI clear screen', '\x1b[2J\x1b[H', '\\x1b[2J\\x1b[H'],
    ['newline, carriage return, tab by name', 'a\nb\rc\td', 'a\\nb\\rc\\td'],
    ['NUL and the other C0', '\x00\x01\x08\x0b\x0c\x1f', '\\x00\\x01\\x08\\x0b\\x0c\\x1f'],
    ['DEL', 'a\x7fb', 'a\\x7fb'],
    ['C1: CSI, NEL, OSC, ST', '\x9b2J\x85\x9d\x9c', '\\x9b2J\\x85\\x9d\\x9c'],
    ['bidi override and isolate', 'a\u202eb\u2066c\u2069', 'a\\u{202e}b\\u{2066}c\\u{2069}'],
    ['line and paragraph separators', 'a\u2028b\u2029c', 'a\\u{2028}b\\u{2029}c'],
    ['zero-width characters and BOM', 'a\u200bb\u200dc\ufeff', 'a\\u{200b}b\\u{200d}c\\u{feff}'],
    ['format characters: soft hyphen, Arabic letter mark, tag characters', 'a\u00adb\u061cc\u{e0041}\u{e007f}', 'a\\xadb\\u{61c}c\\u{e0041}\\u{e007f}'],
    ['other format characters (\\p{Cf})', 'x\u0600\u180e\u2064\ufff9\u{1d173}', 'x\\u{600}\\u{180e}\\u{2064}\\u{fff9}\\u{1d173}'],
    ['a whole attack', EVIL, EVIL_SHOWN],
  ])('%s', (_name, input, shown) => {
    expect(termText(input)).toBe(shown);
    expect(termText(shown)).toBe(shown); // once is enough: escaping twice changes nothing
    expect(termText(input)).not.toMatch(CONTROL);
  });

  it('termLines keeps the newlines between lines, escapes the rest', () => {
    expect(termLines('a\x1b[2J\nb\rc\n')).toBe('a\\x1b[2J\nb\\rc\n');
  });

  it.each<[string, unknown]>([
    ['a string', EVIL],
    ['nested', { uri: EVIL, list: [EVIL, 1, null], [EVIL]: true }],
    ['format characters, astral ones too', { ua: 'a\u00ad\u061c\u{e0041}\u{e007f}b', [`k\u{e0020}`]: '\u{1d173}' }],
  ])('jsonText is the same JSON, with nothing a terminal acts on: %s', (_name, value) => {
    for (const indent of [undefined, 2]) {
      const text = jsonText(value, indent);
      expect(JSON.parse(text)).toEqual(value);
      expect(text.replace(/\n/g, '')).not.toMatch(CONTROL);
    }
  });
});

describe('worker text is escaped wherever it is printed', () => {
  const frame = { function: `f${EVIL}`, source: `/app/${EVIL}.lua`, line: 3 };
  const request = { method: 'GET', uri: `/x?ua=${EVIL}` };
  const hit = {
    event: 'hit', id: 1, pid: 4243, time: 0, source: frame.source, line: 3, frames: [frame], request,
    locals: { [`n${EVIL}`]: { type: 'string', value: EVIL } }, upvalues: {}, varargs: [{ type: 'string', value: EVIL }],
  } as unknown as Extract<BreakpointEvent, { event: 'hit' }>;

  it.each<[string, () => string, string[]]>([
    ['a value', () => renderValue({ type: 'string', value: EVIL }), ['\\u001b]0;pwned\\u0007']],
    ['a value of another type', () => renderValue({ type: 'userdata', value: EVIL } as Lua.Value), ['\\x1b]0;pwned']],
    ['a cdata type', () => renderValue({ type: 'cdata', ctype: EVIL }), ['cdata<\\x1b]0;pwned']],
    ['a logpoint message', () => formatHit({ ...hit, message: `ua=${EVIL}\nforged line` } as any), ['ua=\\x1b]0;pwned\\x07', '\\nforged line']],
    ['a snapshot', () => formatHit(hit), ['#0 f\\x1b]0;pwned', '/app/\\x1b]0;pwned', 'GET /x?ua=\\x1b]0;pwned', 'n\\x1b]0;pwned\\x07']],
    ['a stack', () => formatStack([{ level: 0, ...frame, what: 'Lua', locals: [{ name: EVIL, value: { type: 'nil' } }] }], 100, request), ['request GET /x?ua=\\x1b]0;pwned', '    \\x1b]0;pwned']],
    ['the coroutines table', () => formatCoroutines([{ pid: 7, coroutines: [{ id: 1, kind: 'request', state: 'suspended', wait: { kind: 'cosocket', detail: EVIL } as Lua.Wait, frames: [frame], request, top_frame_index: 0 }], error: EVIL }]), ['worker 7: \\x1b]0;pwned']],
    ['the tasks table and stacks', () => formatTasks([{ pid: 7, total: 1, truncated: false, tasks: [{ id: 1, runtime: EVIL, method: 'm', state: 'pending', age_ms: 1, req_len: 5, req_preview: EVIL, coroutine: { id: 2, frames: [frame], top_frame_index: 0, request } }] }]), ['task 1 \\x1b]0;pwned', 'request GET /x?ua=\\x1b]0;pwned']],
    ['a task hit line', () => taskLine({ phase: 'resume', runtime: EVIL, method: 'm', ok: false, err: EVIL }), ['task resume \\x1b]0;pwned']],
    ['an agent error event', () => formatEvent({ event: 'error', id: 1, pid: 7, message: EVIL })!, ['error on worker 7: \\x1b]0;pwned']],
    ['a removal reason', () => formatEvent({ event: 'removed', id: 1, pid: 7, reason: EVIL })!, ['(\\x1b]0;pwned']],
    ['an armed line from a hostile agent', () => formatEvent({ event: 'armed', id: 1, pid: 7, state: 'armed', source: EVIL, line: 1, mode: { mode: 'call hook', reason: EVIL } } as any)!, ['at \\x1b]0;pwned', '(call hook: \\x1b]0;pwned']],
    ['a spec in the breakpoints list', () => { const d = describeSpec({ url: EVIL, line: 1, log: EVIL }); return `${d.location} ${d.condition}`; }, ['\\x1b]0;pwned']],
    ['the workers table and notes', () => formatWorkers([{ pid: 7, worker_id: 0, user: EVIL, versions: { nginx: EVIL, ngx_lua: '1', luajit: '2', agent: '3' }, jit: { enabled: true, flags: [EVIL] }, breakpoint_mode: readMode({ mode: 'call hook', reason: EVIL }) }]), ['bp mode: call hook: \\x1b]0;pwned', 'jit flags: \\x1b]0;pwned']],
    ['any table cell', () => formatTable(['a', 'b'], [[EVIL, 'x']]), ['\\x1b]0;pwned']],
  ])('%s', (_name, render, contains) => {
    const out = render();
    for (const line of out.split('\n')) expect(line).not.toMatch(CONTROL);
    for (const c of contains) expect(out).toContain(c);
  });

  it('a table still lines up when a cell held escapes', () => {
    const out = formatTable(['uri', 'n'], [[`/a${EVIL}`, '1'], ['/b', '22']]);
    const [, a, b] = out.split('\n');
    expect(a!.length).toBe(b!.length);
    expect(a!.endsWith(' 1')).toBe(true);
    expect(b!.endsWith('22')).toBe(true);
  });
});
