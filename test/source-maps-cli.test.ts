// Breakpoints through a source map, against real nginx (2 workers): a TypeScriptToLua handler
// (test/fixtures/tstl, compiled at test time) is set by its .ts line, arms on the generated Lua
// line, and its hits carry the original handler.ts position beside the Lua one.
import { beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../probe/session.js';
import { startCli as start, stopCliAfterEach } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { buildTstl, luaLineOf, TSTL_HTTP, TSTL_OUT, TSTL_TS, tsMarkerLine } from './harness/tstl-app.js';

// Before useNginx's beforeAll: nginx mounts out/, which must exist by then.
beforeAll(() => buildTstl(), 60_000);
stopCliAfterEach();

/** Requests one at a time until `until` settles. */
async function drive(url: string, until: Promise<unknown>, max = 300): Promise<void> {
  let done = false;
  void until.then(() => (done = true));
  for (let i = 0; i < max && !done; i++) {
    await http(url);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('breakpoints on a TypeScriptToLua source (source map)', () => {
  const nginx = useNginx({ workers: 2, http: TSTL_HTTP, luaPath: [TSTL_OUT] });
  const TS_LINE = tsMarkerLine();

  /** The compiled module runs under LuaJIT in nginx; and is loaded (getScripts lists it). */
  async function warm(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      const res = await http(nginx().url('/tstl?n=2'));
      expect(res.status).toBe(200);
      expect(res.body.toString()).toMatch(/^n=2 total=16 served=\d+\n$/);
    }
  }

  it('the compiled handler serves requests', warm);

  it('Debugger.getScripts lists the loaded chunks, the compiled handler among them', async () => {
    await warm();
    const s = await Session.open(nginx().masterPid);
    try {
      const all = await s.callAll('Debugger.getScripts', {});
      expect(all).toHaveLength(2);
      const scripts = all.flatMap((r) => r.result?.scripts ?? []);
      const mine = scripts.filter((x) => x.source.endsWith('/handler.lua'));
      expect(mine.length).toBeGreaterThan(0);
      for (const x of mine) expect(x.last_line!).toBeGreaterThanOrEqual(x.first_line!);
      expect(scripts.some((x) => x.source.includes('nffi/inspect/link.lua'))).toBe(true);
      for (const x of scripts) expect(x.source).toMatch(/^[=/]|^[\w.]/);
    } finally {
      await s.close();
    }
  });

  it('MASTER handler.ts:LINE --count 1 --json arms on the generated line; the hit shows handler.ts', async () => {
    await warm();
    const LUA_LINE = luaLineOf('return sum');
    expect(LUA_LINE).toBeGreaterThan(TS_LINE); // the inlined lualib comes first
    const cli = start(['breakpoint', String(nginx().masterPid), `${TSTL_TS}:${TS_LINE}`, '--count', '1', '--json']);
    await waitFor(() => cli.lines().filter((l) => l.event === 'armed').length === 2,
      { timeout: 15_000, what: `armed on both workers; out: ${cli.out()} err: ${cli.err()}` });
    for (const a of cli.lines().filter((l) => l.event === 'armed')) {
      if (a.state !== 'armed') continue; // a worker that has not loaded it yet: pending on the .lua
      expect(a.source).toMatch(/\/handler\.lua$/);
      expect(a.line).toBe(LUA_LINE);
      expect(a.original).toEqual({ source: expect.stringMatching(/\/src\/handler\.ts$/), line: TS_LINE });
      expect(a.moved_from).toBeUndefined();
    }
    await drive(nginx().url('/tstl?n=3'), cli.exited);
    expect(await cli.exited).toBe(0);
    expect(cli.err()).toBe('');
    const hits = cli.lines().filter((l) => l.event === 'hit');
    expect(hits).toHaveLength(1);
    const h = hits[0];
    expect(h.source).toMatch(/\/handler\.lua$/);
    expect(h.line).toBe(LUA_LINE);
    expect(h.original).toEqual({ source: expect.stringMatching(/\/src\/handler\.ts$/), line: TS_LINE });
    expect(h.frames[0]).toMatchObject({ line: LUA_LINE, original: { line: TS_LINE } });
    // the caller (route) is mapped too
    expect(h.frames[1]).toMatchObject({ original: { source: expect.stringMatching(/handler\.ts$/) } });
    expect(h.locals.n).toMatchObject({ type: 'number', value: 3 });
    expect(h.locals.sum).toMatchObject({ type: 'number', value: 24 });
  });

  it('human output shows handler.ts:LINE (handler.lua:LINE)', async () => {
    await warm();
    const LUA_LINE = luaLineOf('return sum');
    const cli = start(['breakpoint', String(nginx().masterPid), `${TSTL_TS}:${TS_LINE}`, '--count', '1', '--wide']);
    await waitFor(() => /armed on worker/.test(cli.out()), { timeout: 15_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
    expect(cli.out()).toContain(`handler.ts:${TS_LINE} (handler.lua:${LUA_LINE})`);
    await drive(nginx().url('/tstl?n=1'), cli.exited);
    expect(await cli.exited).toBe(0);
    const header = cli.out().split('\n').find((l) => l.startsWith('[hit bp'));
    expect(header).toMatch(new RegExp(`^\\[hit bp \\d+\\] pid \\d+ \\S*/src/handler\\.ts:${TS_LINE} \\(handler\\.lua:${LUA_LINE}\\) `));
    expect(cli.out()).toMatch(new RegExp(`#0 \\S+ at \\S*handler\\.ts:${TS_LINE} \\(handler\\.lua:${LUA_LINE}\\)`));
  });

  it('a .ts line without code moves to the next one that has, and says so', async () => {
    await warm();
    const blank = tsMarkerLine('BLANK');
    const cli = start(['breakpoint', String(nginx().masterPid), `${TSTL_TS}:${blank}`, '--count', '1', '--timeout', '3s', '--json']);
    await waitFor(() => cli.lines().some((l) => l.event === 'armed' && l.state === 'armed'),
      { timeout: 15_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
    const a = cli.lines().find((l) => l.event === 'armed' && l.state === 'armed');
    expect(a.moved_from).toBe(blank);
    expect(a.original.line).toBeGreaterThan(blank);
  });
});
