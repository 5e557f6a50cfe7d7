// The task part of a task breakpoint hit (cli/format/hit.ts): human lines and NDJSON.
import { describe, expect, it } from 'vitest';
import { describeSpec, eventJson, formatHit, taskLine } from '../cli/format/hit.js';

const base = { event: 'hit' as const, id: 3, pid: 42, time: 0, source: 'app.lua', line: 7, frames: [], locals: {}, upvalues: {}, varargs: [] };

describe('task hits', () => {
  it.each([
    [{ phase: 'enqueue', runtime: 'echo', method: 'echo', req_len: 5, req_preview: 'hello' }, '  task enqueue echo.echo req 5 B "hello"'],
    [{ phase: 'resume', runtime: 'fail', method: 'go', ok: false, rc: 1, err: 'error: x', res_len: 8, res_preview: 'error: x',
      latency_ms: { queue: 0.0123, service: 12.345, wakeup: 0.5, total: 12.9 } },
    '  task resume fail.go ok=false rc=1 err="error: x" res 8 B "error: x" latency queue 0.012ms service 12.3ms wakeup 0.500ms total 12.9ms'],
    [{ phase: 'resume', runtime: 'slow', method: 'wait', ok: false, err: 'timeout' }, '  task resume slow.wait ok=false err="timeout"'],
  ] as const)('%j', (task, line) => {
    expect(taskLine(task as any)).toBe(line);
  });

  it('cuts long previews and shows the full length', () => {
    expect(taskLine({ phase: 'enqueue', runtime: 'r', method: 'm', req_len: 1000, req_preview: 'x'.repeat(256) }, 60))
      .toBe(`  task enqueue r.m req 1000 B "${'x'.repeat(20)}"…`);
  });

  it('the task line follows the header; NDJSON carries task last', () => {
    const task = { phase: 'enqueue' as const, runtime: 'echo', method: 'echo', req_len: 1, req_preview: 'a' };
    const text = formatHit({ ...base, task } as any);
    expect(text.split('\n')[1]).toBe('  task enqueue echo.echo req 1 B "a"');
    expect(Object.keys(eventJson({ ...base, task } as any)!).pop()).toBe('task');
    expect(Object.keys(eventJson(base as any)!)).not.toContain('task');
  });

  it('lists an ffi: spec without a line', () => {
    expect(describeSpec({ url: 'ffi:echo.*', condition: '#req > 3' })).toEqual({ location: 'ffi:echo.*', condition: 'if #req > 3' });
  });
});
