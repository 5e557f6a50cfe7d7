// store/frames.ts: which frame of a stack is the application's, the default plumbing patterns,
// and how the environment and the command line change them.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PLUMBING, framesFromShown, framesToAsk, globSource, isPlumbing, plumbingRule, shownFrame, shownFrameIndex,
  userFrameIndex, type RuleFrame,
} from '../store/frames.js';

const C = (name: string): RuleFrame & { function: string } => ({ function: name, source: '=[C]', line: -1, what: 'C' });
const L = (source: string, line: number, name = '?'): RuleFrame & { function: string } => ({ function: name, source, line, what: 'Lua' });

// the demo's request waiting in /api/slow, as the agent reports it
const NFFI_WAIT = [
  C('co_yield'),
  L('/usr/share/lua/5.1/ngx/semaphore.lua', 160, 'wait'),
  L('/work/main/lua/nffi/call.lua', 93, 'wait_ready'),
  L('/work/main/lua/nffi/call.lua', 203, 'fetch'),
  L('/work/main/demo/lua/demo_app.lua', 41, 'h'),
  L('/work/main/demo/lua/demo_app.lua', 74, 'handle'),
  L('=content_by_lua(nginx.conf:25)', 1),
];

const rule = plumbingRule({ env: undefined });

describe('the first frame in application code', () => {
  it.each<[string, RuleFrame[], number]>([
    ['a request waiting on an nffi task: past co_yield, ngx/semaphore.lua and nffi/call.lua', NFFI_WAIT, 4],
    ['ngx.sleep: past the C function', [C('sleep'), L('=content_by_lua(nginx.conf:30)', 1)], 1],
    ['a cosocket read in a handler', [C('receiveany'), L('/srv/app/upstream.lua', 12, 'read')], 1],
    ['lua-resty-core wrappers and lua-resty-lock', [L('/usr/local/openresty/lualib/resty/core/base.lua', 10), L('/usr/local/openresty/lualib/resty/lock.lua', 150), L('/srv/app/x.lua', 3)], 2],
    ['resty/core.lua itself', [L('/usr/share/lua/5.1/resty/core.lua', 1), L('/srv/app/x.lua', 3)], 1],
    ['chunks loaded by name (nffi.call)', [L('=nffi.call', 5), L('app.lua', 3)], 1],
    ['nffi\'s own timer: nothing of the application', [C('receiveany'), L('/work/main/lua/nffi/pump.lua', 122), C('pcall'), L('/work/main/lua/nffi/pump.lua', 139)], -1],
    ['no frames (a timer not fired yet)', [], -1],
    ['a frame with what "C" but another source', [{ source: 'x', line: -1, what: 'C' }, L('/a.lua', 1)], 1],
    ['a directory merely named like one is not plumbing (resty-core is not resty/core)', [L('/srv/resty-core/app.lua', 2)], 0],
  ])('%s', (_name, frames, want) => expect(userFrameIndex(frames, rule)).toBe(want));

  it('shown: the user frame, else the first Lua frame, else the top; -1 for none', () => {
    const pump = [C('receiveany'), L('/work/main/lua/nffi/pump.lua', 122)];
    expect(shownFrameIndex(NFFI_WAIT, rule)).toBe(4);
    expect(shownFrameIndex(pump, rule)).toBe(1);
    expect(shownFrameIndex([C('x')], rule)).toBe(0);
    expect(shownFrameIndex([], rule)).toBe(-1);
    expect(shownFrame(NFFI_WAIT, rule)).toEqual(NFFI_WAIT[4]);
    expect(framesFromShown(NFFI_WAIT, 2, rule).map((f) => f.line)).toEqual([41, 74]);
  });
});

describe('overriding the rule', () => {
  it.each<[string, Parameters<typeof plumbingRule>[0], number]>([
    ['NFFI_INSPECT_PLUMBING replaces the defaults ("" keeps only the C rule)', { env: '' }, 1],
    ['…with its own list', { env: 'ngx/*.lua,nffi/**' }, 4],
    ['"+PATTERN" adds to the defaults', { env: '+demo/lua/demo_app.lua' }, 6],
    ['--plumbing adds to what is in effect', { env: undefined, extra: ['**/demo/**'] }, 6],
    ['--plumbing with commas', { env: undefined, extra: ['x.lua,demo_app.lua'] }, 6],
    ['--all-frames: the top frame is the top frame', { env: undefined, allFrames: true }, 0],
  ])('%s', (_name, opts, want) => expect(userFrameIndex(NFFI_WAIT, plumbingRule(opts))).toBe(want));

  it('the defaults are one list, named in --help and the README', () => {
    expect(plumbingRule({ env: undefined }).patterns).toEqual([...DEFAULT_PLUMBING]);
    expect(DEFAULT_PLUMBING).toEqual(expect.arrayContaining(['nffi/**', 'resty/core/**', 'resty/*lock*.lua', 'ngx/*.lua']));
  });

  it('reads the environment when not told', () => {
    const before = process.env.NFFI_INSPECT_PLUMBING;
    process.env.NFFI_INSPECT_PLUMBING = 'demo_app.lua';
    try {
      expect(plumbingRule().patterns).toEqual(['demo_app.lua']);
    } finally {
      if (before === undefined) delete process.env.NFFI_INSPECT_PLUMBING;
      else process.env.NFFI_INSPECT_PLUMBING = before;
    }
  });

  it.each<[string, string, boolean]>([
    ['ngx/*.lua', '/usr/share/lua/5.1/ngx/semaphore.lua', true],
    ['ngx/*.lua', '/usr/share/lua/5.1/ngx/sub/x.lua', false],
    ['nffi/**', '/work/main/lua/nffi/inspect/link.lua', true],
    ['**/vendor/*.lua', '/srv/app/vendor/json.lua', true],
    ['app?.lua', '/srv/app1.lua', true],
    ['a.lua', '/srv/ba.lua', false],
    ['(x).lua', '/srv/(x).lua', true],
  ])('glob %s on %s: %s', (glob, source, hit) => {
    expect(new RegExp(`(?:^|/)${globSource(glob)}$`).test(source)).toBe(hit);
    expect(isPlumbing(L(source, 1), plumbingRule({ env: glob }))).toBe(hit);
  });

  it('asks the agent for enough frames to reach past the plumbing', () => {
    expect(framesToAsk(1, rule)).toBeGreaterThan(4);
    expect(framesToAsk(100, rule)).toBe(50);
    expect(framesToAsk(3, plumbingRule({ env: undefined, allFrames: true }))).toBe(3);
  });
});
