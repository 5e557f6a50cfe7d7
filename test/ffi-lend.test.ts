// Requests of 256 bytes or more are lent to libnffi rather than copied at
// submit: the runtime thread that polls the task copies them, on its own CPU
// (issue 15: the worker's copy was a tenth of its time per 4 KiB call with the
// runtime's threads on another CPU). End to end, real nginx and the example
// runtimes: every response is its own request at 32 light threads; a runtime
// still gets a copy it may write into; and a lent request outlives a waiter
// that gives up or is killed before a poller took its task, through a full GC
// and a heap refilled with strings of its size. (Worker exit, where the whole
// Lua state goes: native/test/test_borrow.c and test/ffi-reload.test.ts.)
import { describe, expect, it } from 'vitest';
import { useNginx, waitFor } from './harness/nginx.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
import { FIXTURE_LUA, FFI_APP_HTTP } from './harness/ffi-app.js';

const nginx = useNginx({ workers: 1, http: FFI_APP_HTTP, luaPath: [FIXTURE_LUA] });

async function getJson(path: string): Promise<any> {
  const res = await fetch(nginx().url(path));
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}

describe('lent requests', () => {
  it.each([64, 256, 4096, 65536])('%i distinct bytes a call, 32 light threads: every response is its own request, none held after', async (size) => {
    const doc = await getJson(`/lend_many?size=${size}&n=20&conc=32`);
    expect(doc).toEqual({ calls: 640, bad: 0, anchored: 0, late: 0 });
  });

  it.each([300, 65536])('a runtime that writes into its %i-byte request leaves the caller\'s string as it was', async (size) => {
    expect(await getJson(`/scribble?size=${size}`)).toEqual({ ok: true, echoed: true, intact: true });
  });

  it('a timeout while the task waits in the queue: freed at once, the request let go', async () => {
    const doc = await getJson('/lend_abandon');
    expect(doc.abandoned).toEqual({ anchored: 0, late: 0 });
    expect(doc.task).toBeNull();
    expect(doc.after).toEqual({ ok: true, res_len: 300, anchored: 0, late: 0 });
  });

  it('a timeout while a poller holds the task: held until libnffi frees it, then let go', async () => {
    const doc = await getJson('/lend_late');
    expect(doc.first).toEqual({ ok: false, err: 'timeout' });
    expect(doc.abandoned).toEqual({ anchored: 1, late: 1 });
    expect(doc.after).toEqual({ ok: true, anchored: 0, late: 0 });
  });

  it.each(['eventfd', 'pump'])('a waiter killed while its task waits in the queue (%s path): the request stays intact through a full GC, then the task is given up', async (wake) => {
    const doc = await getJson(`/lend_abandon?how=kill&wake=${wake}`);
    expect(doc.abandoned).toEqual({ anchored: 1, late: 0 });
    expect(doc.task).toEqual({ state: 'pending', intact: true });
    // the poller took it after the holder and copied intact bytes: the worker keeps serving
    expect(doc.after).toMatchObject({ ok: true, res_len: 300 });
    // nobody comes back for that task: once its coroutine is collected, a sweep frees it and
    // lets the request go (it was READY by then: freed at once, nothing late)
    const swept = await getJson('/lend_sweep');
    expect(swept).toMatchObject({ anchored: 0, late: 0 });
    expect(Object.values(swept.live)).toEqual(wake === 'pump' ? [0, 0] : [0]);
    expect(await getJson('/lend_many?size=4096&n=5&conc=8')).toEqual({ calls: 40, bad: 0, anchored: 0, late: 0 });
  });

  it('a worker exit with a lent task no runtime thread took: copied before the Lua state closes', async () => {
    const old = nginx().workerPids();
    expect(await getJson('/lend_park?ms=3000')).toEqual({ anchored: 1 });
    await nginx().reload();
    await waitFor(() => old.every((p) => !isAlive(p)), { timeout: 10_000, what: 'the old worker to exit' });
    const log = nginx().errorLog();
    expect(log).toContain('nffi: 1 lent request no runtime thread had taken copied before the Lua state closed');
    expect(log).not.toMatch(/exited on signal/);
  });
});
