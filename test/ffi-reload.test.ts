// A graceful reload while coroutines wait on FFI tasks: nothing fails, nothing
// leaks, and the old workers exit promptly (the pump does not hold them).
import { describe, expect, it } from 'vitest';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { FIXTURE_LUA, FFI_APP_HTTP } from './harness/ffi-app.js';

const nginx = useNginx({ workers: 2, http: FFI_APP_HTTP, luaPath: [FIXTURE_LUA] });

interface LoadResult { requests: number; failed: string[] }

// `conc` loops, each issuing requests back to back until `stop` resolves.
async function load(path: (i: number) => string, conc: number, stop: Promise<void>): Promise<LoadResult> {
  let stopped = false;
  void stop.then(() => { stopped = true; });
  const result: LoadResult = { requests: 0, failed: [] };
  const loop = async (worker: number) => {
    for (let i = 0; !stopped; i++) {
      try {
        // a fresh connection each time, as a keep-alive client would see the old
        // worker close its idle connection (nginx's graceful exit), not a failure of ours
        const res = await http(nginx().url(path(worker * 100000 + i)));
        const text = res.body.toString();
        const doc = res.status === 200 ? JSON.parse(text) : undefined;
        if (!doc || doc.mismatches !== 0 || doc.failures !== 0) result.failed.push(`${res.status} ${text}`);
      } catch (err) {
        result.failed.push(String(err));
      }
      result.requests++;
    }
  };
  await Promise.all(Array.from({ length: conc }, (_, w) => loop(w)));
  return result;
}

describe('reload under load', () => {
  it('two reloads while 16 clients call the runtimes: zero failures, no leaked task', async () => {
    let finish!: () => void;
    const stop = new Promise<void>((resolve) => { finish = resolve; });
    // every third request's calls are lent (256 bytes and up: copied by the poller) across the
    // reloads (a graceful exit waits for requests: ffi-lend.test.ts has one with a lent task
    // still queued when the Lua state closes)
    const running = load((i) => `/many?rt=${i % 2 ? 'echo' : 'echo_mt'}&n=20&id=${i}${i % 3 ? '' : '&pad=4096'}`, 16, stop);

    const before = nginx().workerPids();
    await new Promise((r) => setTimeout(r, 800));
    const t0 = Date.now();
    await nginx().reload();
    const firstReloadMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 800));
    await nginx().reload();
    await new Promise((r) => setTimeout(r, 500));
    finish();
    const result = await running;

    // a failure says what the workers logged (a stuck call shows there)
    expect(result.failed, nginx().errorLogTail(80)).toEqual([]);
    expect(result.requests).toBeGreaterThan(100);
    const after = nginx().workerPids();
    expect(after).toHaveLength(2);
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    // old workers are gone well before the pump's idle read timeout (5 s)
    expect(firstReloadMs).toBeLessThan(4000);

    // each worker publishes every 200 ms: wait for both to report after the load
    const settled = await waitFor(async () => {
      const doc = JSON.parse((await http(nginx().url('/stats'))).body.toString());
      const current = doc.workers.filter((w: any) => after.includes(w.pid));
      const runtimes = current.flatMap((w: any) => w.runtimes);
      const outstanding = runtimes.reduce((acc: number, r: any) => acc + r.live + r.depth + r.in_flight, 0);
      const calls = runtimes.reduce((acc: number, r: any) => acc + r.completed, 0);
      return current.length === 2 && outstanding === 0 ? { calls } : undefined;
    }, { timeout: 3000, what: 'both new workers to report no outstanding task' });
    expect(settled.calls).toBeGreaterThan(0);
    expect(nginx().errorLog()).not.toMatch(/\[nffi pump restart\]|\[alert\]|\[crit\]/);
  });
});
