// The Go example runtime (native/examples/go: cgo, -buildmode=c-shared, one
// goroutine per poller) in real nginx (2 workers, as nobody when started by
// root), beside the C example runtimes: the same inputs give the same results.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './harness/cli.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

// the agent, and a Go runtime loaded in each worker as it starts
const GO_APP_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start()
    GO_AT_START = assert(require("nffi").load("nffi_go_echo", "pollers=1", { name = "go_init_worker" }))
}
client_max_body_size 64m;
client_body_buffer_size 64m;
server {
    listen 127.0.0.1:$PORT;
    location / { content_by_lua_block { require("go_app").route() } }
}
`;

const nginx = useNginx({ workers: 2, http: GO_APP_HTTP, luaPath: [FIXTURE_LUA] });

async function post(path: string, body: Buffer): Promise<{ status: number; body: Buffer; worker: number }> {
  const res = await http(nginx().url(path), { method: 'POST', body, timeout: 30_000 });
  return { status: res.status, body: res.body, worker: Number(res.headers['x-worker']) };
}

async function getJson(path: string, body?: string): Promise<any> {
  const res = await http(nginx().url(path), { method: body === undefined ? 'GET' : 'POST', body });
  const text = res.body.toString();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}

/** A thread's name, or undefined for one that ended since the task list was read (an unloaded
 * runtime's pollers end just then). */
function threadName(pid: number, tid: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8');
  } catch {
    return undefined;
  }
}

function pollerThreads(pid: number): { all: number; pollers: number } {
  const names = readdirSync(`/proc/${pid}/task`).map((t) => threadName(pid, t)).filter((n) => n !== undefined);
  return { all: names.length, pollers: names.filter((n) => n === 'nffi_go_poll\n').length };
}

// NULs at both ends and inside, random bytes between
function payload(size: number): Buffer {
  const b = randomBytes(size);
  if (size > 0) b[0] = 0;
  if (size > 2) b[size >> 1] = 0;
  if (size > 1) b[size - 1] = 0;
  return b;
}

describe('echo', () => {
  it.each([0, 1, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024])('%i bytes with NULs come back exact, as through the C echo', async (size) => {
    const body = payload(size);
    const [go, c] = [await post('/echo', body), await post('/echo?rt=c', body)];
    expect(go.status, go.body.toString().slice(0, 200)).toBe(200);
    expect(go.body.length).toBe(size);
    expect(go.body.equals(body)).toBe(true);
    expect(c.status).toBe(200);
    expect(c.body.equals(go.body)).toBe(true);
  });

  it('200 concurrent calls over both workers: every answer is its own request', async () => {
    const bodies = Array.from({ length: 200 }, (_, i) => Buffer.concat([Buffer.from(`${i}\0`), payload(1 + (i * 97) % 4000)]));
    const answers = await Promise.all(bodies.map((b) => post('/echo', b)));
    const bad = answers.filter((a, i) => a.status !== 200 || !a.body.equals(bodies[i]!));
    expect(bad.length).toBe(0);
    expect(new Set(answers.map((a) => a.worker)).size).toBe(2);
  });
});

describe('slow, fail, unknown methods', () => {
  it('slow answers after the ms asked for; 100 at once wait together', async () => {
    const one = await getJson('/slow?n=1&ms=150');
    expect(one).toMatchObject({ calls: 1, bad: 0 });
    expect(one.elapsed_ms).toBeGreaterThanOrEqual(145);
    const many = await getJson('/slow?n=100&ms=300');
    expect(many).toMatchObject({ calls: 100, bad: 0 });
    expect(many.elapsed_ms).toBeGreaterThanOrEqual(295);
    expect(many.elapsed_ms).toBeLessThan(3000);
  });

  it('a timeout gives what the C slow runtime gives', async () => {
    const doc = await getJson('/timeout');
    expect(doc.go).toEqual(doc.c);
    expect(doc.go[0]).toBe(false);
    expect(doc.go_waited_ms).toBeGreaterThanOrEqual(95);
    expect(doc.go_waited_ms).toBeLessThan(900);
  });

  it('fail gives what the C fail runtime gives for the same rc and request', async () => {
    const doc = await getJson('/fail');
    expect(doc.go).toEqual(doc.c);
    expect(doc.go[0]).toBe(false);
    expect(JSON.stringify(doc.go)).toContain('error: boom');
  });

  it.each([
    ['frobnicate x', 'unknown method "frobnicate" (have: echo, slow, fail, panic)'],
    ['', 'unknown method "" (have: echo, slow, fail, panic)'],
    ['slow soon', 'slow wants \'slow <ms> [body]\' with ms in 0..3600000, got "soon"'],
  ])('%j is refused with rc 2 and a message', async (req, message) => {
    const doc = await getJson('/call', req);
    // the C fail runtime's shape, with the Go runtime's rc and message
    const c = (await getJson('/fail')).c;
    expect(doc.result).toEqual(c.map((v: unknown) => (v === 7 ? 2 : v === 'error: boom' ? message : v)));
  });

  it('a method that panics answers rc 4; the worker lives on', async () => {
    const first = await getJson('/call', 'panic at the disco');
    const c = (await getJson('/fail')).c;
    expect(first.result).toEqual(c.map((v: unknown) => (v === 7 ? 4 : v === 'error: boom' ? 'panic: at the disco' : v)));
    expect(nginx().workerPids()).toContain(first.pid);
    // the same worker serves on (requests land on either: ask until it answers)
    await waitFor(async () => (await getJson('/call', 'echo again')).pid === first.pid,
      { timeout: 5000, what: `worker ${first.pid} to answer again` });
  });

  it('a bad cfg fails the load with the reason in the error log', async () => {
    const doc = await getJson('/badcfg?cfg=pollers%3Dmany');
    expect(doc.go[0]).toBeNull();
    expect(doc.go[1]).toMatch(/init failed with rc 1/);
    await waitFor(() => /\[nffi_go_echo\] bad cfg "pollers=many": pollers="many" is not an integer/.test(nginx().errorLog()),
      { timeout: 2000, what: 'the bad cfg line in error.log' });
  });
});

describe('__unload', () => {
  it('refuses calls as the C runtimes do, and the poller threads end, load after load', async () => {
    const doc = await getJson('/unload?cycles=3');
    expect(doc.served).toBe(true);
    expect(doc.go_after).toEqual(doc.c_after);
    expect(doc.go_after[0]).toBe(false);
    // 8 pollers, 8 threads named nffi_go_poll, all gone once unloaded
    const { before } = doc;
    for (const n of doc.during) expect(n.pollers).toBe(before.pollers + 8);
    // the worker's count is back near where it was: Go may keep a few idle
    // threads it started meanwhile (it reuses them), never the 8
    for (const n of doc.after) {
      expect(n.pollers).toBe(before.pollers);
      expect(n.all).toBeLessThan(before.all + 8);
    }
    // and load after load it does not grow by 8 either
    const growth = doc.after[doc.after.length - 1].all - doc.after[0].all;
    expect(growth).toBeLessThan(8);
    // as ls /proc/PID/task and its comm files show it from outside
    expect(pollerThreads(doc.pid).pollers).toBe(before.pollers);
  });
});

describe('the inspector and reloads', () => {
  it('queue --json shows the Go runtime with its completed calls', async () => {
    const pids = new Set<number>();
    for (let i = 0; i < 40 && pids.size < 2; i++) pids.add((await post('/echo', Buffer.from('q'))).worker);
    const r = await runCli(['queue', String(nginx().masterPid), '--json']);
    expect(r.stderr).toBe('');
    const rows = JSON.parse(r.stdout).workers.flatMap((w: any) => w.runtimes.filter((rt: any) => rt.name === 'go_echo'));
    expect(rows.length).toBe(2);
    for (const row of rows) {
      expect(row.completed).toBeGreaterThan(0);
      expect(row.completed).toBe(row.enqueued);
      expect(row).toMatchObject({ depth: 0, in_flight: 0, timeouts: 0, rejected: 0 });
    }
  });

  it('nginx -s reload: new workers load Go afresh and keep serving', async () => {
    const before = nginx().workerPids();
    await nginx().reload();
    const after = nginx().workerPids();
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    const bodies = Array.from({ length: 40 }, (_, i) => payload(100 + i));
    const answers = await Promise.all(bodies.map((b) => post('/echo', b)));
    expect(answers.filter((a, i) => a.status !== 200 || !a.body.equals(bodies[i]!)).length).toBe(0);
    expect(answers.every((a) => after.includes(a.worker))).toBe(true);
    // the old workers exit: runtime threads do not hold them
    await waitFor(() => before.every((p) => { try { process.kill(p, 0); return false; } catch { return true; } }),
      { timeout: 5000, what: 'the old workers to exit' });
    expect(nginx().errorLog()).not.toMatch(/\[alert\]|\[crit\]|exited on signal/);
  });
});

describe('where the library is loaded', () => {
  it('init_worker_by_lua: the worker that loads it runs it', async () => {
    const doc = await getJson('/early');
    expect(doc.go).toEqual(doc.c);
    expect(doc.go.slice(0, 2)).toEqual([true, 'from init_worker']);
  });
});

// nffi.load in init_by_lua runs in the master, before fork. Go's runtime
// starts with the library, in threads the workers do not inherit; the library
// refuses to start in them (rc 3, the reason in the error log) instead of
// hanging every worker. A host that opens the library only in the worker
// (lua/nffi/runtime.lua does not yet) makes the same lines work.
describe('nffi.load in init_by_lua', () => {
  const early = useNginx({ workers: 2, luaPath: [FIXTURE_LUA], http: `
init_by_lua_block { require("nffi").load("nffi_go_echo", nil, { name = "go_init" }) }
server {
    listen 127.0.0.1:$PORT;
    location / { content_by_lua_block {
        local nffi = require("nffi")
        local rt = nffi.load("nffi_go_echo", nil, { name = "go_init" })
        -- the shape of a call that got no answer, from a C runtime
        local c = assert(nffi.load("nffi_echo", "early", { name = "c_early" }))
        c:__unload()
        ngx.say(require("cjson").encode({ go = { rt:call("echo hi") }, c = { c:echo("x") } }))
    } }
}` });

  it('never hangs the worker: it answers, or refuses with the reason', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await http(early().url('/'), { timeout: 5000 });
      expect(res.status).toBe(200);
      const { go, c } = JSON.parse(res.body.toString());
      if (go[0] === true) {
        expect(go[1]).toBe('hi');   // the library was opened in the worker
      } else {
        const reason = c.find((v: unknown) => typeof v === 'string');
        expect(go).toEqual(c.map((v: unknown) => (v === reason ? 'runtime init failed with rc 3' : v)));
        expect(early().errorLog()).toContain(`[nffi_go_echo] loaded in process ${early().masterPid}, started in `);
      }
    }
  });
});
