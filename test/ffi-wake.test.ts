// nffi's wake-up paths (issue 15): the eventfd registered in nginx's event loop
// (native/ngx/nffi_ngx.c), whose handler posts each waiter's semaphore, and the
// pump it replaces. Which one a worker can use is detected here as the binding
// does (libnffi_ngx.so is built only against the installed nginx's headers);
// each path is asserted byte-exact under concurrency, with timeouts, unload and
// reload, and the stats must name it. The fallback is forced with the binding's
// test switch (NFFI_WAKE_FAULT) and per runtime (opts.wake = "pump").
import { describe, expect, it } from 'vitest';
import { useNginx, waitFor } from './harness/nginx.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { FAST_BUILT, WAKE_HTTP, getJson } from './harness/wake-app.js';

const AUTO_PATH = FAST_BUILT ? 'eventfd' : 'pump';

describe('the worker\'s own path', () => {
  const nginx = useNginx({ workers: 2, http: WAKE_HTTP, luaPath: [FIXTURE_LUA] });

  it.each([1, 2])('32 light threads x 20 calls up to 70 KB, byte-exact, path in the stats (round %i)', async () => {
    const doc = await getJson(nginx().url('/run?conc=32&n=20&max=70000'));
    expect(doc.calls).toBe(640);
    expect(doc.failures).toBe(0);
    expect(doc.mismatches).toBe(0);
    const rt = doc.runtimes.auto;
    expect(rt.wake).toBe(AUTO_PATH);
    if (AUTO_PATH === 'eventfd') {
      expect(rt.wake_reason).toBeUndefined();
      // every result was delivered by a semaphore libnffi posted, in batches
      expect(doc.posted).toBe(640);
      expect(doc.wakeups).toBeGreaterThan(0);
      expect(doc.wakeups).toBeLessThanOrEqual(640);
      expect(doc.wake.outstanding).toBe(0);
    } else {
      expect(rt.wake_reason).toMatch(/nginx-dev|libnffi_ngx/);
    }
    expect(rt.live).toBe(0);
  });

  it('calls made one after another: byte-exact with the event loop\'s short poll on', async () => {
    const doc = await getJson(nginx().url('/run?conc=1&n=200&max=5000&loop_poll=1000'));
    expect(doc.calls).toBe(200);
    expect(doc.failures + doc.mismatches).toBe(0);
    // a response that comes before its waiter parks signals the eventfd as before
    if (AUTO_PATH === 'eventfd') {
      expect(doc.posted).toBe(200);
      expect(doc.loop_hits).toBeLessThanOrEqual(200);
      expect(doc.wake.outstanding).toBe(0);
    } else {
      expect(doc.loop_hits).toBe(0);
    }
    expect(doc.runtimes.auto.live).toBe(0);
  });

  it('a response 1 ms after its call is found by the event loop\'s short poll, with no eventfd signal', async () => {
    // a 50 ms poll: only a machine that stalls the worker that long makes one miss
    const doc = await getJson(nginx().url('/seq?n=40&loop_poll=50000'));
    expect(doc).toMatchObject({ calls: 40, bad: 0, outstanding: 0, live: 0 });
    if (AUTO_PATH === 'eventfd') {
      expect(doc.posted).toBe(40);
      expect(doc.loop_hits).toBeGreaterThanOrEqual(38);
      // a response the poll found needs no eventfd signal: at most those it missed signal, and
      // a couple more (the worker's one eventfd also counts a response that raced a poll's end)
      expect(doc.signals).toBeLessThanOrEqual(doc.posted - doc.loop_hits + 2);
    } else {
      expect(doc.loop_hits).toBe(0);
    }
  });

  it('a runtime told to use the pump, at the same time as one on the worker\'s path', async () => {
    const doc = await getJson(nginx().url('/run?conc=16&n=20&max=9000&wake=auto,pump'));
    expect(doc.calls).toBe(640);
    expect(doc.failures + doc.mismatches).toBe(0);
    expect(doc.runtimes.pump.wake).toBe('pump');
    expect(doc.runtimes.pump.wake_reason).toBe('opts.wake = "pump"');
    expect(doc.runtimes.auto.wake).toBe(AUTO_PATH);
    if (AUTO_PATH === 'eventfd') expect(doc.posted).toBe(320);
  });

  it.each(['auto', 'pump'])('timeout (%s): "timeout" at 50 ms, the late response freed, the runtime still answers', async (wake) => {
    const doc = await getJson(nginx().url(`/timeout?wake=${wake}`));
    expect(doc.first).toEqual({ ok: false, err: 'timeout' });
    expect(doc.late).toBeGreaterThanOrEqual(1);
    expect(doc.second).toEqual({ ok: true, res: 'quick' });
    expect(doc.live).toBe(0);
    expect(doc.wake).toBe(wake === 'pump' ? 'pump' : AUTO_PATH);
    expect(doc.outstanding).toBe(0);
  });

  it.each(['auto', 'pump'])('__unload (%s): the next call says "task queue is finished"', async (wake) => {
    const doc = await getJson(nginx().url(`/unload?wake=${wake}`));
    expect(doc.first).toEqual({ ok: true, res: 'before' });
    expect(doc.second).toEqual({ ok: false, err: 'task queue is finished' });
  });

  it('reload while calls run: old workers exit cleanly, new ones take the same path', async () => {
    const running = Promise.all(Array.from({ length: 8 }, () => getJson(nginx().url('/run?conc=8&n=40&max=4000'))));
    await new Promise((r) => setTimeout(r, 50));
    await nginx().reload();
    const docs = await running;
    for (const d of docs) expect(d.failures + d.mismatches).toBe(0);
    const doc = await getJson(nginx().url('/run?conc=8&n=5&max=100'));
    expect(doc.runtimes.auto.wake).toBe(AUTO_PATH);
    // the eventfd's connection is closed before a worker exits: nginx names a
    // connection left open at exit ("open socket ... left in connection")
    await waitFor(() => (/exiting/.test(nginx().errorLog()) ? true : undefined), { timeout: 10_000, what: 'an old worker exiting' });
    expect(nginx().errorLog()).not.toMatch(/open socket|exited on signal/);
  });
});

describe.each([
  ['headers', /nginx headers do not match the running nginx/],
  ['event', /event method is not epoll/],
])('the eventfd path failing its %s check (test switch)', (fault, reason) => {
  const nginx = useNginx({ workers: 1, http: WAKE_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_WAKE_FAULT: fault } });

  it('falls back to the pump, says why, and stays byte-exact', async () => {
    const doc = await getJson(nginx().url('/run?conc=32&n=10&max=70000'));
    expect(doc.failures + doc.mismatches).toBe(0);
    expect(doc.runtimes.auto.wake).toBe('pump');
    expect(doc.runtimes.auto.wake_reason).toMatch(FAST_BUILT ? reason : /nginx-dev/);
    expect(doc.posted).toBe(0);
    if (FAST_BUILT) expect(nginx().errorLog()).toContain('[nffi wake pump: ');
  });
});
