// probe/source-maps.ts and the source-map path of probe/breakpoints.ts, without nginx: a small
// hand-written map (app.ts -> app.lua, TypeScriptToLua-like: the inlined lualib first, then the
// module) and table-driven lookups both ways; map discovery (`.map` beside the file, the
// sourceMappingURL comment); a breakpoint set on app.ts arming on app.lua and hits that carry
// the original positions.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SourceMapGenerator } from 'source-map';
import { afterAll, describe, expect, it } from 'vitest';
import { Breakpoints, type BreakpointEvent, type BreakpointSession } from '../probe/breakpoints.js';
import type { Debugger, Target } from '../probe/protocol-types.js';
import { findMapFile, matchesPath, mayBeOriginal, parseMap, SourceMaps, type LineMap } from '../probe/source-maps.js';

const DIR = mkdtempSync(join(tmpdir(), 'nffi-sm-test-'));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

/** generated line, column -> original line of ../src/app.ts (lines 1-based). */
const MAPPINGS: [number, number, number][] = [
  [20, 0, 3], // local items = ...   <- const items = [...]
  [20, 14, 4], //                    <- a later original line on the same generated line
  [22, 0, 7], // local function total(n)
  [23, 4, 8], // local sum = 0
  [24, 4, 10], // for ... do         (line 9 of app.ts is a comment: no mapping)
  [25, 8, 11], // sum = sum + ...
  [27, 4, 13], // return sum
  [30, 4, 17], // served = served + 1
  [31, 4, 17], // a second generated line for the same original line
];

function rawMap(): string {
  const g = new SourceMapGenerator({ file: 'app.lua' });
  for (const [line, column, orig] of MAPPINGS) {
    g.addMapping({ generated: { line, column }, original: { line: orig, column: 0 }, source: '../src/app.ts' });
  }
  return g.toString();
}

const LUA = join(DIR, 'out', 'app.lua');
const TS = join(DIR, 'src', 'app.ts');

for (const d of ['out', 'maps']) mkdirSync(join(DIR, d));

describe('matchesPath and mayBeOriginal', () => {
  it.each([
    ['app.ts', '/x/src/app.ts', true],
    ['src/app.ts', '/x/src/app.ts', true],
    ['/x/src/app.ts', '/x/src/app.ts', true],
    ['pp.ts', '/x/src/app.ts', false],
    ['app.ts', '/x/src/app.tsx', false],
  ])('%s names %s: %s', (url, path, want) => expect(matchesPath(url, path)).toBe(want));

  it.each([
    ['app.ts', true],
    ['src/app.ts', true],
    ['handler.lua', false],
    ['=content_by_lua(nginx.conf:40)', false],
    ['ffi:echo.*', false],
  ])('%s may name an original source: %s', (url, want) => expect(mayBeOriginal(url)).toBe(want));
});

describe('LineMap from a hand-written map', () => {
  let map: LineMap;
  it('parses', async () => {
    map = await parseMap(rawMap(), join(DIR, 'out', 'app.lua.map'));
    expect(map.sources()).toEqual([TS]);
  });

  it.each([
    // original line -> generated line, moved_from, the original line used
    [3, 20, undefined, 3],
    [4, 20, undefined, 4],
    [7, 22, undefined, 7],
    [9, 24, 9, 10], // a comment: the next original line with code
    [10, 24, undefined, 10],
    [13, 27, undefined, 13],
    [17, 30, undefined, 17], // the first generated line of two
    [1, 20, 1, 3], // before any code
  ])('app.ts:%i arms on app.lua:%i (moved from %s, original %i)', (line, gen, moved, orig) => {
    const g = map.generated(TS, line);
    expect(g).toEqual({ line: gen, original: orig, ...(moved !== undefined ? { moved_from: moved } : {}) });
  });

  it('past the last line with code there is nothing', () => {
    expect(map.generated(TS, 18)).toBeUndefined();
    expect(map.generated('/elsewhere/app.ts', 3)).toBeUndefined();
  });

  it.each([
    [20, 3], // the first mapping of the line (by column)
    [22, 7],
    [25, 11],
    [31, 17],
    [1, undefined], // the inlined lualib: unmapped
    [26, undefined],
  ])('app.lua:%i comes from app.ts:%s', (line, orig) => {
    expect(map.original(line)).toEqual(orig === undefined ? undefined : { source: TS, line: orig });
  });
});

describe('finding and caching maps', () => {
  const lua = (tail: string) => `local x = 1\nreturn x\n${tail}`;

  it('<file>.map beside the Lua file', async () => {
    writeFileSync(LUA, lua(''));
    writeFileSync(`${LUA}.map`, rawMap());
    expect(findMapFile(LUA)).toBe(`${LUA}.map`);
    const sm = new SourceMaps();
    expect((await sm.load(LUA))?.original(27)).toEqual({ source: TS, line: 13 });
    expect(sm.original(LUA, 27)).toEqual({ source: TS, line: 13 });
  });

  it.each([
    ['--# sourceMappingURL=../maps/app.map', '../maps/app.map'],
    ['-- sourceMappingURL=../maps/app.map\n\n', '../maps/app.map'],
  ])('a trailing comment: %j', async (comment) => {
    rmSync(`${LUA}.map`, { force: true });
    writeFileSync(LUA, lua(comment));
    // sources are relative to the map: ../src/app.ts from maps/ is the same file
    writeFileSync(join(DIR, 'maps', 'app.map'), rawMap());
    expect(findMapFile(LUA)).toBe(join(DIR, 'maps', 'app.map'));
    expect((await new SourceMaps().load(LUA))?.sources()).toEqual([TS]);
  });

  it('no map: undefined (and a data: URL is not followed)', () => {
    writeFileSync(LUA, lua('--# sourceMappingURL=data:application/json;base64,e30='));
    expect(findMapFile(LUA)).toBeUndefined();
    expect(findMapFile(join(DIR, 'nosuch.lua'))).toBeUndefined();
  });

  it('reloads when the map changes (path + mtime)', async () => {
    writeFileSync(LUA, lua(''));
    writeFileSync(`${LUA}.map`, rawMap());
    const sm = new SourceMaps();
    const a = await sm.load(LUA);
    expect(await sm.load(LUA)).toBe(a);
    const g = new SourceMapGenerator({ file: 'app.lua' });
    g.addMapping({ generated: { line: 27, column: 0 }, original: { line: 99, column: 0 }, source: '../src/app.ts' });
    writeFileSync(`${LUA}.map`, g.toString());
    utimesSync(`${LUA}.map`, new Date(), new Date(Date.now() + 5_000));
    const b = await sm.load(LUA);
    expect(b).not.toBe(a);
    expect(b?.original(27)).toEqual({ source: TS, line: 99 });
    writeFileSync(`${LUA}.map`, rawMap());
    utimesSync(`${LUA}.map`, new Date(), new Date(Date.now() + 10_000));
  });

  it('resolve: FILE:LINE of an original source -> the chunk and line to arm; unknown FILE -> undefined', async () => {
    const sm = new SourceMaps();
    const scripts = [{ source: LUA }, { source: '=content_by_lua(nginx.conf:40)' }, { source: join(DIR, 'other.lua') }];
    expect(await sm.resolve('app.ts', 13, scripts)).toEqual({ url: LUA, line: 27, original: { source: TS, line: 13 } });
    expect(await sm.resolve('src/app.ts', 9, scripts)).toEqual({ url: LUA, line: 24, original: { source: TS, line: 10 }, moved_from: 9 });
    expect(await sm.resolve('nosuch.ts', 3, scripts)).toBeUndefined();
    await expect(sm.resolve('app.ts', 50, scripts)).rejects.toThrow(/no code at or after line 50/);
  });
});

/** Two workers whose agent lists app.lua and answers setBreakpoint with the line asked for. */
class FakeSession implements BreakpointSession {
  readonly calls: [number, string, any][] = [];
  private agent: Parameters<BreakpointSession['onAgentEvent']>[0][] = [];
  targets(): Target.TargetInfo[] {
    return [11, 12].map((pid) => ({ pid, attached: true }));
  }
  async call(pid: number, method: string, params?: any): Promise<any> {
    this.calls.push([pid, method, params]);
    if (method === 'Debugger.getScripts') return { scripts: [{ source: LUA, first_line: 1, last_line: 40 }] };
    if (method === 'Debugger.setBreakpoint') {
      const { spec, id } = params as Debugger.SetBreakpointParams;
      return { breakpoint: { id, spec, state: 'armed', source: spec.url, line: spec.line, hits: 0, dropped: 0 } };
    }
    return {};
  }
  onTargetEvent(): () => void {
    return () => undefined;
  }
  onAgentEvent(l: Parameters<BreakpointSession['onAgentEvent']>[0]): () => void {
    this.agent.push(l);
    return () => undefined;
  }
  fire(pid: number, method: string, params: unknown): void {
    for (const l of this.agent) l(pid, method, params);
  }
}

describe('Breakpoints through a source map', () => {
  it('app.ts:13 arms on app.lua:27 on every worker; hits carry app.ts positions', async () => {
    writeFileSync(LUA, 'return 1\n');
    writeFileSync(`${LUA}.map`, rawMap());
    const s = new FakeSession();
    const bps = new Breakpoints(s);
    const events: BreakpointEvent[] = [];
    bps.onEvent((e) => events.push(e));
    const r = await bps.set({ url: 'app.ts', line: 13, count: 1 });
    const sets = s.calls.filter((c) => c[1] === 'Debugger.setBreakpoint').map((c) => c[2].spec);
    expect(sets).toEqual([expect.objectContaining({ url: LUA, line: 27 }), expect.objectContaining({ url: LUA, line: 27 })]);
    expect(r.workers.map((w) => w.original)).toEqual([{ source: TS, line: 13 }, { source: TS, line: 13 }]);
    expect(bps.get(r.id)?.spec).toMatchObject({ url: 'app.ts', line: 13 }); // lists show what was asked
    const frames = [{ function: 'total', source: LUA, line: 27, what: 'Lua' }, { function: 'route', source: LUA, line: 31, what: 'Lua' }, { function: '?', source: '=[C]', line: -1, what: 'C' }];
    s.fire(11, 'Debugger.hit', { id: r.id, time: 1, source: LUA, line: 27, frames });
    const hit = events.find((e) => e.event === 'hit') as Extract<BreakpointEvent, { event: 'hit' }>;
    expect(hit.original).toEqual({ source: TS, line: 13 });
    expect(hit.frames.map((f) => f.original)).toEqual([{ source: TS, line: 13 }, { source: TS, line: 17 }, undefined]);
  });

  it('a .lua FILE and a chunk name go to the agents untouched, without a getScripts walk', async () => {
    const s = new FakeSession();
    const bps = new Breakpoints(s);
    await bps.set({ url: 'handler.lua', line: 3 });
    await bps.set({ url: '=content_by_lua(nginx.conf:40)', line: 2 });
    expect(s.calls.some((c) => c[1] === 'Debugger.getScripts')).toBe(false);
    expect(s.calls.filter((c) => c[1] === 'Debugger.setBreakpoint').map((c) => c[2].spec.url)).toEqual(['handler.lua', 'handler.lua', '=content_by_lua(nginx.conf:40)', '=content_by_lua(nginx.conf:40)']);
  });

  it('a line past the mapped code is refused before anything is armed', async () => {
    const s = new FakeSession();
    await expect(new Breakpoints(s).set({ url: 'app.ts', line: 50 })).rejects.toThrow(/no code at or after line 50/);
    expect(s.calls.some((c) => c[1] === 'Debugger.setBreakpoint')).toBe(false);
  });
});

describe('original positions on serve sockets', () => {
  it('toWire and fromWire keep `original` on armed and hit', async () => {
    const { toWire, fromWire } = await import('../probe/breakpoint-wire.js');
    const original = { source: TS, line: 13 };
    const armed: BreakpointEvent = { event: 'armed', id: 1, pid: 11, state: 'armed', source: LUA, line: 27, original };
    const w = toWire(armed);
    expect(fromWire(w.method, w.params)).toEqual(armed);
    const hit: BreakpointEvent = { event: 'hit', id: 1, pid: 11, time: 1, source: LUA, line: 27, original, frames: [{ function: 'total', source: LUA, line: 27, what: 'Lua', original }] };
    const h = toWire(hit);
    expect(fromWire(h.method, h.params)).toEqual(hit);
  });
});

describe('human output', () => {
  it('shows the original position first and the Lua one in parentheses', async () => {
    const { formatEvent } = await import('../cli/format/hit.js');
    const original = { source: '/app/src/handler.ts', line: 12 };
    const armed = formatEvent({ event: 'armed', id: 1, pid: 11, state: 'armed', source: '/app/out/handler.lua', line: 30, original, moved_from: 11, mode: { mode: 'watching' } });
    expect(armed).toBe('bp 1 armed on worker 11 at /app/src/handler.ts:12 (handler.lua:30) (asked for line 11: no code there) (watching)');
    const hit = formatEvent({ event: 'hit', id: 1, pid: 11, time: 0, source: '/app/out/handler.lua', line: 30, original, frames: [{ function: 'total', source: '/app/out/handler.lua', line: 30, what: 'Lua', original }], locals: {} })!;
    expect(hit.split('\n')[0]).toMatch(/^\[hit bp 1\] pid 11 \/app\/src\/handler\.ts:12 \(handler\.lua:30\) \d\d:/);
    expect(hit.split('\n')[1]).toBe('  #0 total at /app/src/handler.ts:12 (handler.lua:30)');
  });
});
