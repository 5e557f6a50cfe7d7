// cli/errors.ts: what the CLI prints never names a protocol method (issue 14).
import { describe, expect, it } from 'vitest';
import { userMessage } from '../cli/errors.js';
import { formatCoroutines } from '../cli/format/coroutines.js';
import { formatWorkers } from '../cli/format/workers.js';
import { readMode, workerMode } from '../store/workers.js';

const METHOD = /\b(?:Lua|FFI|Agent|Debugger|Runtime|Target)\.[a-z]\w*/;

describe('errors in user words', () => {
  it.each<[string, string]>([
    ["'Lua.getStack' wasn't found", 'the serve probe cannot do reading the stack (it is older than this nffi-inspect: restart serve)'],
    ["'Debugger.getScripts' wasn't found", 'the serve probe cannot do listing loaded chunks (it is older than this nffi-inspect: restart serve)'],
    ['Lua.getStack in worker 5077: unknown coroutine 99999 (ids come from Lua.getCoroutines in this session)',
      'reading the stack in worker 5077: unknown coroutine 99999 (ids come from listing coroutines in this session)'],
    ['FFI.getTasks: worker 12 did not answer within 10000 ms', 'listing tasks: worker 12 did not answer within 10000 ms'],
    ['Lua.getCoroutines: link to worker 7 is closed (worker exited)', 'listing coroutines: link to worker 7 is closed (worker exited)'],
    ['Lua.somethingNew in worker 3: x', 'a request to the agent in worker 3: x'],
    ['no breakpoint 3 in serve probe 42', 'no breakpoint 3 in serve probe 42'],
    ['cannot read /srv/App.lua: Foo.lua is not Lua.x', 'cannot read /srv/App.lua: Foo.lua is not a request to the agent'],
  ])('%s', (raw, shown) => {
    expect(userMessage(raw)).toBe(shown);
    expect(userMessage(raw)).not.toMatch(METHOD);
  });

  it('worker errors in tables and notes are in user words too', () => {
    expect(formatCoroutines([{ pid: 7, coroutines: [], error: 'Lua.getCoroutines in worker 7: busy' }])).toContain('worker 7: listing coroutines in worker 7: busy');
    const mode = workerMode({ pid: 1, attached: true }, { pid: 1, error: 'Agent.getStats in worker 1: timeout' });
    const out = formatWorkers([{ pid: 1, worker_id: 0, user: 'nobody', versions: { nginx: '1', ngx_lua: '1', luajit: '1', agent: '1' }, jit: null, breakpoint_mode: mode }]);
    expect(out).not.toMatch(METHOD);
    expect(out).toContain("reading the agent's state");
    expect(readMode(undefined).mode).toBe('unknown');
  });
});
