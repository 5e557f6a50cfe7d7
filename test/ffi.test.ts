// The nffi runtime end to end: real nginx (2 workers, running as nobody when
// started by root), the real binding and the example runtime libraries.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useNginx, waitFor } from './harness/nginx.js';
import { FIXTURE_LUA, FFI_APP_HTTP } from './harness/ffi-app.js';

const nginx = useNginx({ workers: 2, http: FFI_APP_HTTP, luaPath: [FIXTURE_LUA] });

async function post(path: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(nginx().url(path), { method: 'POST', body });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function getJson(path: string): Promise<any> {
  const res = await fetch(nginx().url(path));
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}

type RuntimeStats = Record<string, any>;

// Sums one runtime's counters over every worker that published stats.
async function runtimeTotals(name: string): Promise<RuntimeStats> {
  const doc = await getJson('/stats');
  const mine = doc.workers.flatMap((w: any) => w.runtimes.filter((r: any) => r.name === name));
  const sum = (k: string) => mine.reduce((acc: number, r: any) => acc + r[k], 0);
  return {
    workers: mine.length,
    enqueued: sum('enqueued'), completed: sum('completed'), timeouts: sum('timeouts'),
    late: sum('late'), rejected: sum('rejected'), depth: sum('depth'),
    in_flight: sum('in_flight'), live: sum('live'), latency: mine.map((r: any) => r.latency_ms),
  };
}

describe('echo is byte-exact', () => {
  const sizes = [0, 1, 64 * 1024, 16 * 1024 * 1024];
  it.each(sizes)('%i random bytes through the echo runtime', async (size) => {
    const body = randomBytes(size);
    const res = await post('/echo?rt=echo', body);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(size);
    expect(res.body.equals(body)).toBe(true);
  });

  it.each(['echo_mt', 'nb_echo'])('binary payload with NULs through %s', async (rt) => {
    const body = Buffer.concat([Buffer.from([0, 0, 1, 0, 255]), randomBytes(4096), Buffer.alloc(3)]);
    const res = await post(`/echo?rt=${rt}`, body);
    expect(res.status).toBe(200);
    expect(res.body.equals(body)).toBe(true);
  });
});

describe('many coroutines at once', () => {
  it('200 concurrent requests x 100 calls: every response matches its request', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => getJson(`/many?rt=echo_mt&n=100&id=r${i}`)),
    );
    const calls = results.reduce((acc, r) => acc + r.calls, 0);
    expect(calls).toBe(20000);
    expect(results.filter((r) => r.mismatches !== 0 || r.failures !== 0)).toEqual([]);
  });
});

describe('errors', () => {
  it('non-zero rc gives false, rc, body', async () => {
    expect(await getJson('/fail')).toEqual({ ok: false, rc: 7, res: 'error: boom' });
  });

  it('a timeout returns at once and the late response is freed, never delivered', async () => {
    const doc = await getJson('/timeout?delay=300');
    expect(doc).toMatchObject({ ok: false, err: 'timeout', extra: null });
    expect(doc.waited_ms).toBeGreaterThanOrEqual(45);
    expect(doc.waited_ms).toBeLessThan(250);
    const totals = await waitFor(async () => {
      const t = await runtimeTotals('slow_timeout');
      return t.late >= 1 && t.live === 0 ? t : undefined;
    }, { timeout: 3000, what: 'the late response to be freed' });
    expect(totals.timeouts).toBe(1);
    expect(totals.completed).toBe(0);
    expect(totals.in_flight).toBe(0);
  });

  it('a full queue refuses at once', async () => {
    const doc = await getJson('/queuefull');
    expect(doc.fourth).toEqual({ ok: false, err: 'post failed, queue full', extra: null });
    expect(doc.results.map((r: any) => [r.ok, r.res])).toEqual([[true, 'a'], [true, 'b'], [true, 'c']]);
    const totals = await runtimeTotals('slow_small');
    expect(totals.rejected).toBe(1);
  });

  it('calling where the coroutine cannot yield is a clear error', async () => {
    const res = await fetch(nginx().url('/phase'));
    expect(res.headers.get('x-nffi-error')).toMatch(/header_filter phase, which cannot yield/);
  });
});

describe('unload', () => {
  it('serves the pending tasks, then refuses, and a new load starts afresh', async () => {
    const doc = await getJson('/unload');
    expect(doc.served).toEqual(['p1', 'p2', 'p3']);
    expect(doc.after).toEqual({ ok: false, err: 'task queue is finished', extra: null });
    expect(doc.same_before_unload).toBe(true);
    expect(doc.reload_is_new).toBe(true);
  });
});

describe('instrumentation', () => {
  it('a snapshot shows the pending task and the coroutine waiting on it', async () => {
    const doc = await getJson('/snapshot?delay=300');
    expect(doc.completed).toBe(true);
    const task = doc.task;
    expect(task).toMatchObject({
      runtime: 'slow_snap', method: 'wait', state: 'polled', req_len: doc.payload_len,
      waiter_is_thread: true,
    });
    expect(task.req_preview).toBe(('delay=300;' + 'p'.repeat(100)).slice(0, 64));
    expect(task.age_ms).toBeGreaterThanOrEqual(40);
    expect(task.age_ms).toBeLessThan(300);
  });

  it('counters and latencies match what the test did', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => getJson(`/many?rt=stats&n=10&id=s${i}`)));
    const totals = await waitFor(async () => {
      const t = await runtimeTotals('stats_echo');
      return t.completed === 200 ? t : undefined;
    }, { timeout: 3000, what: 'stats_echo to count 200 completed calls' });
    expect(totals).toMatchObject({ enqueued: 200, completed: 200, timeouts: 0, rejected: 0,
                                   depth: 0, in_flight: 0, live: 0 });
    for (const lat of totals.latency) {
      expect(lat.total.count).toBeGreaterThan(0);
      expect(lat.total.p50).toBeGreaterThan(0);
      expect(lat.total.p99).toBeGreaterThanOrEqual(lat.total.p50);
      expect(lat.total.max).toBeGreaterThanOrEqual(lat.total.p99 * 0.99);
      expect(lat.total.p99).toBeGreaterThanOrEqual(lat.service.p50);
    }
  });

  it('a runtime loaded with instrument = false serves byte-exact, unstamped and uncounted', async () => {
    const docs = await Promise.all(Array.from({ length: 20 }, (_, i) => getJson(`/many?rt=quiet&n=10&id=q${i}`)));
    await Promise.all(Array.from({ length: 20 }, (_, i) => getJson(`/many?rt=stats&n=1&id=i${i}`)));
    expect(docs.map((d) => [d.mismatches, d.failures])).toEqual(docs.map(() => [0, 0]));
    // each worker publishes its stats now and then: wait for the calls to show
    const doc = await waitFor(async () => {
      const d = await getJson('/stats');
      const polled = d.workers.flatMap((w: any) => w.runtimes.filter((r: any) => r.name === 'quiet_echo'))
        .reduce((n: number, r: any) => n + r.polled, 0);
      return polled === 200 ? d : undefined;
    }, { timeout: 3000, what: 'quiet_echo to count 200 polled calls' });
    const quiet = doc.workers.flatMap((w: any) => w.runtimes.filter((r: any) => r.name === 'quiet_echo'));
    expect(quiet.length).toBeGreaterThan(0);
    for (const r of quiet) {
      // what libnffi_noinst shows: no sampling, no latencies, no counts but the pollers'
      expect(r).toMatchObject({ latency_sample_every: 0, latency_samples: 0, enqueued: 0, completed: 0,
                                live: 0, depth: 0, in_flight: 0 });
      expect(r.latency_ms.total.count).toBe(0);
    }
    // the instrumented runtimes of the same workers still are
    const other = doc.workers.flatMap((w: any) => w.runtimes.filter((r: any) => r.name === 'stats_echo'));
    expect(other.length).toBeGreaterThan(0);
    for (const r of other) expect(r.latency_sample_every).toBe(64);
    expect(other.reduce((n: number, r: any) => n + r.latency_ms.total.count, 0)).toBeGreaterThan(0);
  });

  it('an opts.instrument that is not a boolean is a clear error', async () => {
    const doc = await getJson('/load_bad_instrument');
    expect(doc.ok).toBe(false);
    expect(doc.err).toMatch(/nffi\.load: opts\.instrument must be a boolean$/);
    // the same where the runtime was already made by an earlier load
    expect(doc).toMatchObject({ made: true, ok2: false });
    expect(doc.err2).toMatch(/nffi\.load: opts\.instrument must be a boolean$/);
  });
});
