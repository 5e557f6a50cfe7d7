// opts.readonly_request end to end: a runtime that promised to only read its
// requests gets the caller's Lua string in place of a copy (issue 15: the copy
// was a tenth of the worker's time per 4 KiB call with the runtime's threads on
// another CPU). Real nginx, the example runtimes, 32 light threads at a time;
// the request must outlive a waiter that gives up or is killed while a runtime
// thread still holds it, a full GC and a heap refilled with strings of its size.
import { describe, expect, it } from 'vitest';
import { useNginx } from './harness/nginx.js';
import { FIXTURE_LUA, FFI_APP_HTTP } from './harness/ffi-app.js';

const nginx = useNginx({ workers: 1, http: FFI_APP_HTTP, luaPath: [FIXTURE_LUA] });

async function getJson(path: string): Promise<any> {
  const res = await fetch(nginx().url(path));
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}

describe('a runtime loaded with readonly_request', () => {
  it.each([256, 4096, 65536])('%i distinct bytes a call, 32 light threads: every response is its own request, read in place', async (size) => {
    const doc = await getJson(`/ro_many?size=${size}&n=20&conc=32`);
    expect(doc).toMatchObject({ calls: 640, bad: 0, readonly_request: true });
    // every request was handed over in place, none copied
    expect(doc.in_place).toBe(640);
    // and none is still held once every call returned
    expect(doc).toMatchObject({ anchored: 0, late: 0 });
  });

  it('requests under 256 bytes are copied as before (cheaper than keeping the string)', async () => {
    const doc = await getJson('/ro_many?size=64&n=10&conc=4');
    expect(doc).toMatchObject({ calls: 40, bad: 0, in_place: 0, readonly_request: true, anchored: 0 });
  });

  it('a timeout while the runtime holds the task: the request stays intact through a full GC, then is let go', async () => {
    const doc = await getJson('/ro_abandon');
    // abandoned while held: kept until libnffi frees the task
    expect(doc.abandoned).toEqual({ anchored: 1, late: 1 });
    // the inspector's snapshot reads the request's first bytes from the caller's string
    expect(doc.task).toEqual({ state: 'abandoned', intact: true, req_len: 10 + 4096 });
    // freed after the late response; the next call sees it and drops the string
    expect(doc.after).toEqual({ ok: true, res_len: 300, anchored: 0, late: 0 });
  });

  it('a waiter killed while the runtime holds the task: the request stays intact through a full GC', async () => {
    const doc = await getJson('/ro_abandon?how=kill');
    expect(doc.abandoned).toMatchObject({ anchored: 1, late: 0 });
    expect(doc.task).toEqual({ state: 'polled', intact: true, req_len: 10 + 4096 });
    expect(doc.after).toMatchObject({ ok: true, res_len: 300 });
    // the worker keeps serving copied and in-place requests alike
    expect(await getJson('/ro_many?size=4096&n=5&conc=8')).toMatchObject({ calls: 40, bad: 0, in_place: 40 });
  });

  it('a readonly_request that is not a boolean is a clear error', async () => {
    const doc = await getJson('/ro_badopt');
    expect(doc.ok).toBe(false);
    expect(doc.err).toMatch(/opts\.readonly_request must be a boolean/);
  });
});
