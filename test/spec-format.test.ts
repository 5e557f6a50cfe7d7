// What `breakpoint` prints about a spec from its workers' answers (cli/format/hit.ts), on plain
// data: the pending and ffi warnings (said once, only when no worker matched) and why a line
// moved. The same against a real nginx: test/breakpoint-spec.test.ts.
import { describe, expect, it } from 'vitest';
import type { BreakpointEvent } from '../client/client.js';
import { formatEvent, specWarnings } from '../cli/format/hit.js';

describe('specWarnings', () => {
  it.each([
    ['every worker pending: the nearest names, best rank first, then by name',
      { url: 'app.lua', line: 3 }, [{ state: 'pending', nearest: ['/a/apps.lua', '/a/zpp.lua'] }, { state: 'pending', nearest: ['/a/ap.lua', '/a/apps.lua'] }],
      ['no loaded chunk matches app.lua; pending until one loads (nearest loaded: /a/ap.lua, /a/apps.lua, /a/zpp.lua)']],
    ['none near', { url: 'nope.lua', line: 3 }, [{ state: 'pending', nearest: [] }],
      ['no loaded chunk matches nope.lua; pending until one loads (none has a similar name; `scripts PID` lists them)']],
    ['one worker armed: nothing to say', { url: 'app.lua', line: 3 }, [{ state: 'armed' }, { state: 'pending', nearest: ['/a/x.lua'] }], []],
    ['refused everywhere: nothing to say', { url: 'app.lua', line: 3 }, [{ state: 'failed' }], []],
    ['no runtime of that name on any worker', { url: 'ffi:img.resize' }, [{ state: 'armed', runtimes: ['echo'] }, { state: 'armed', runtimes: ['echo', 'slow'] }],
      ['no runtime named img is loaded yet (loaded: echo, slow); ffi:img.resize fires once one is']],
    ['none loaded at all', { url: 'ffi:a.b.*' }, [{ state: 'armed', runtimes: [] }], ['no runtime named a.b is loaded yet (loaded: none); ffi:a.b.* fires once one is']],
    ['a worker has it', { url: 'ffi:echo.*' }, [{ state: 'armed', runtimes: ['slow'] }, { state: 'armed' }], []],
  ])('%s', (_, spec, workers, want) => {
    expect(specWarnings(spec, workers)).toEqual(want);
  });

  it('escapes what the workers sent for the terminal', () => {
    expect(specWarnings({ url: 'a.lua', line: 1 }, [{ state: 'pending', nearest: ['/x/\x1b]0;pwned\x07.lua'] }])[0]).not.toMatch(/\x1b/);
  });
});

describe('a moved line', () => {
  const armed: BreakpointEvent = { event: 'armed', id: 1, pid: 10, state: 'armed', source: 'base.lua', line: 77, moved_from: 10, mode: { mode: 'watching' } };
  it.each([
    ['inside a function', {}, 'bp 1 armed on worker 10 at base.lua:77 (asked for line 10: no code there) (watching)'],
    ['at the top level', { top_level: true }, "bp 1 armed on worker 10 at base.lua:77 (asked for line 10: not in a function, and the file's top level ran when it loaded) (watching)"],
  ])('%s', (_, extra, want) => {
    expect(formatEvent({ ...armed, ...extra } as BreakpointEvent)).toBe(want);
  });
});
