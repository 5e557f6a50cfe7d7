// The Python runtime end to end: real nginx (2 workers, as nobody) loads
// native/build/examples/libnffi_python.so, which embeds CPython and runs
// python/nffi_echo_py.py (cffi pollers). Its results are compared with the C
// example runtimes' in the same nginx, not with fixed values: what a call
// returns is the binding's business.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './harness/cli.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { AGENT } from './harness/probe-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const PY_HTTP = `
lua_shared_dict py_test 1m;
client_max_body_size 64m;
client_body_buffer_size 64m;
init_by_lua_block { require("py_app").init() }
${AGENT}

server {
    listen 127.0.0.1:$PORT;
    location / {
        content_by_lua_block { require("py_app").route() }
    }
}
`;

const nginx = useNginx({ workers: 2, http: PY_HTTP, luaPath: [FIXTURE_LUA] });

async function getJson(path: string): Promise<any> {
  const res = await http(nginx().url(path), { timeout: 30_000 });
  const text = res.body.toString();
  expect(res.status, text).toBe(200);
  return JSON.parse(text);
}

interface Packed { n: number; v: unknown[] }

function tasksOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`);
}

function namedThreads(pid: number, name: string): number {
  return tasksOf(pid).filter((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === name;
    } catch {
      return false;   // the thread ended meanwhile
    }
  }).length;
}

function pyLines(): string[] {
  return nginx().errorLog().split('\n').filter((l) => l.includes('[nffi python]'));
}

async function pyEchoCompleted(): Promise<number> {
  const r = await runCli(['queue', String(nginx().masterPid), '--json']);
  expect(r.stderr).toBe('');
  const doc = JSON.parse(r.stdout);
  expect(doc.workers).toHaveLength(2);
  const rows = doc.workers.flatMap((w: any) => w.runtimes).filter((rt: any) => rt.name === 'py_echo');
  return rows.reduce((acc: number, rt: any) => acc + rt.completed, 0);
}

// The C fail runtime (cfg 1) answers rc 1 and "error: <request>"; the
// Python results must have its shape: the same values but the message.
function sameShape(py: Packed, c: Packed, cMessage: string, pyMessage: RegExp): void {
  const at = c.v.indexOf(cMessage);
  expect(at, `C's result ${JSON.stringify(c)} holds its message`).toBeGreaterThan(0);
  expect(py.n).toBe(c.n);
  expect(py.v.map((x, i) => (i === at ? 'MSG' : x))).toEqual(c.v.map((x, i) => (i === at ? 'MSG' : x)));
  expect(py.v[at]).toMatch(pyMessage);
}

describe('the Python runtime', () => {
  it('the library and modules are readable by the workers\' user', async () => {
    const dir = `${nginx().root}/native/build/examples`;
    for (const f of ['libnffi_python.so', 'python/nffi_py.py', 'python/nffi_echo_py.py']) {
      const r = spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', `${dir}/${f}`]);
      expect(r.status, `${f} readable by nobody`).toBe(0);
    }
    // nothing compiled next to the sources, then or now
    expect(readdirSync(`${dir}/python`).sort()).toEqual(['nffi_echo_py.py', 'nffi_py.py']);
  });

  it.each([0, 1, 64 * 1024, 1024 * 1024, 4 * 1024 * 1024])('echo is byte-exact: %i random bytes over HTTP', async (size) => {
    const body = Buffer.concat([Buffer.from([0]), randomBytes(size)]).subarray(0, size);
    const res = await http(nginx().url('/echo'), { method: 'POST', body, timeout: 30_000 });
    expect(res.status, res.body.subarray(0, 200).toString()).toBe(200);
    expect(res.body.length).toBe(size);
    expect(res.body.equals(body)).toBe(true);
  });

  // the sizes /many sends: 1 MiB for every 20th call, else 0 B, 1 B, 64 KiB by i % 3
  const sizeOf = (i: number) => (i % 20 === 0 ? 1024 * 1024 : [0, 1, 64 * 1024][i % 3]);
  const bytesOf = (n: number) => Array.from({ length: n }, (_, i) => sizeOf(i + 1)).reduce((a, b) => a + b, 0);

  it('2,000 echoes with NULs (0 B, 1 B, 64 KiB, 1 MiB), 20 requests x 4 light threads: 0 bad', async () => {
    const docs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => getJson(`/many?n=100&conc=4&id=r${i}`)),
    );
    const sum = (k: string) => docs.reduce((acc, d) => acc + d[k], 0);
    expect({ calls: sum('calls'), bad: sum('bad'), failures: sum('failures') })
      .toEqual({ calls: 2000, bad: 0, failures: 0 });
    expect(sum('bytes')).toBe(20 * bytesOf(100));
    expect(new Set(docs.map((d) => d.pid)).size).toBeGreaterThanOrEqual(1);
    expect(pyLines()).toEqual([]);
  });

  it('queue --json shows the Python runtime\'s row with its completed calls', async () => {
    // both workers serve py_echo first, so each has its row
    await waitFor(async () => {
      const d = await getJson('/many?n=1&id=warm');
      return (await pyEchoCompleted()) > 0 && d;
    }, { what: 'py_echo rows in queue --json' });
    const before = await pyEchoCompleted();
    const docs = await Promise.all(Array.from({ length: 4 }, (_, i) => getJson(`/many?n=10&id=q${i}`)));
    expect(docs.map((d) => d.bad + d.failures)).toEqual([0, 0, 0, 0]);
    expect(await pyEchoCompleted()).toBe(before + 40);
  });

  it('slow answers after its sleep; with a timeout it gives what the C slow runtime gives', async () => {
    const slow = await getJson('/slow?ms=60');
    expect(slow.result).toEqual({ n: expect.any(Number), v: [true, 'done', ...Array(slow.result.n - 2).fill(null)] });
    expect(slow.waited_ms).toBeGreaterThanOrEqual(55);

    const [py, c] = await Promise.all([getJson('/timeout?impl=py&delay=400'), getJson('/timeout?impl=c&delay=400')]);
    expect(c.result.v[0]).toBe(false);
    expect(py.result).toEqual(c.result);
    expect(py.waited_ms).toBeGreaterThanOrEqual(95);
    expect(py.waited_ms).toBeLessThan(350);
  });

  it('one poller asleep in a handler, the other answers meanwhile (the GIL is not held)', async () => {
    const doc = await getJson('/overlap?ms=1000');
    expect(doc.echo.v.slice(0, 2)).toEqual([true, 'meanwhile']);
    expect(doc.slow).toEqual([true, 'slept']);
    expect(doc.slow_ms).toBeGreaterThanOrEqual(995);
    // a held GIL would have kept the echo until the sleep ended
    expect(doc.echo_ms).toBeLessThan(doc.slow_ms - 400);
  });

  it('fail gives exactly what the C fail runtime gives', async () => {
    const [py, c] = await Promise.all([getJson('/call?impl=py&m=fail&body=boom'), getJson('/call?impl=c&m=fail&body=boom')]);
    expect(c.v[0]).toBe(false);
    expect(py).toEqual(c);
  });

  it.each([
    ['raise', 'it broke', /^RuntimeError: it broke$/],
    ['slow', 'soon', /^ValueError: invalid literal for int\(\) with base 10: b'soon'$/],
    ['nope', 'x', /^unknown method 'nope' \(known: echo, fail, raise, slow\)$/],
  ])('%s(%j): an error result shaped as the C fail runtime\'s, the worker unharmed', async (m, body, msg) => {
    const q = `m=${m}&body=${encodeURIComponent(body)}`;
    const [py, c] = await Promise.all([getJson(`/call?impl=py&${q}`), getJson(`/call?impl=c&${q}`)]);
    sameShape(py, c, `error: ${body}`, msg);
    // the same runtime still serves
    const ok = await getJson('/call?impl=py&m=echo&body=still');
    expect(ok.v.slice(0, 2)).toEqual([true, 'still']);
  });

  it('a library of one\'s own from "dir/module,init"; "?" re-imports it after __unload; no __pycache__', async () => {
    const dir = `${nginx().prefix}/pylib`;
    mkdirSync(dir);
    chmodSync(dir, 0o777);   // the workers (nobody) write the module, and could write bytecode
    const doc = await getJson(`/byo?dir=${encodeURIComponent(dir)}`);
    expect([doc.first.v[1], doc.cached.v[1], doc.reloaded.v[1]]).toEqual(['v1', 'v1', 'v2']);
    expect(doc.reloaded.v[0]).toBe(true);
    // an rc that is no C int: an error result as for an exception, the C fail runtime's shape
    const c = await getJson('/call?impl=c&m=fail&body=x');
    sameShape(doc.first.badrc, c, 'error: x', /^TypeError: handler returned rc 'x', not a C int$/);
    expect(readdirSync(dir)).toEqual(['byo_svc.py']);
  });

  it('a module written for lua-resty-ffi\'s Python loader loads unchanged through ngx.load_ffi', async () => {
    const dir = `${nginx().prefix}/pyresty`;
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const doc = await getJson(`/resty_style?dir=${encodeURIComponent(dir)}`);
    expect(doc.result.v.slice(0, 2)).toEqual([true, 'hello']);
  });

  it('a cfg the loader refuses: load fails, one [nffi python] line says why', async () => {
    const cases: Array<[string, RegExp]> = [
      ['no_such_mod,init', /cannot import 'no_such_mod': ModuleNotFoundError: No module named 'no_such_mod'/],
      ['nffi_echo_py,nope', /module 'nffi_echo_py' has no function 'nope'/],
      ['nffi_echo_py,init,pollers=0', /nffi_echo_py\.init raised: ValueError: pollers must be 1\.\.256, got 0 \(at .*nffi_py\.py:\d+\)/],
      ['/nonexistent/py/mod,init', /cannot import 'mod' from \/nonexistent\/py: ModuleNotFoundError: No module named 'mod'/],
      ['nffi_echo_py', /cfg must be "\[dir\/\]module\[\?\],entry\[,cfg\]", got "nffi_echo_py"/],
    ];
    for (const [cfg, line] of cases) {
      const doc = await getJson(`/badload?cfg=${encodeURIComponent(cfg)}`);
      expect(doc.loaded).toBe(false);
      expect(doc.err).toMatch(/rc 1/);
      await waitFor(() => pyLines().some((l) => line.test(l)), { timeout: 3000, what: `a log line ${line}` });
    }
    expect(nginx().errorLog()).not.toMatch(/\[alert\]|\[crit\]|exited on signal/);
  });

  it('__unload: later calls get the unloaded result and the pollers are gone from /proc/PID/task', async () => {
    const label = 'py-unload';
    const done = getJson(`/unload?label=${label}&pollers=3`);
    const state = await waitFor(async () => {
      const d = await getJson(`/state?label=${label}`);
      return d.pid ? d : undefined;
    }, { what: 'the runtime to be loaded' });
    const pid = state.pid as number;
    expect(namedThreads(pid, label)).toBe(3);
    expect(tasksOf(pid)).toHaveLength(state.threads);
    await getJson(`/go?label=${label}`);
    const doc = await done;
    expect(doc.warm.v.slice(0, 2)).toEqual([true, 'warm']);
    expect(doc.after).toBe(doc.before - 3);
    expect(namedThreads(pid, label)).toBe(0);
    expect(tasksOf(pid)).toHaveLength(doc.after);

    const c = await getJson('/c_unloaded?label=u1');
    expect(c.warm.v.slice(0, 2)).toEqual([true, 'warm']);
    expect(c.after_call.v[0]).toBe(false);
    expect(doc.after_call).toEqual(c.after_call);
  });

  it('loaded in init_by_lua: the master starts no Python thread, each worker serves', async () => {
    const docs = await waitFor(async () => {
      const seen = new Map<number, any>();
      for (let i = 0; i < 20 && seen.size < 2; i++) {
        const d = await getJson('/early');
        seen.set(d.pid, d);
      }
      return seen.size === 2 ? [...seen.values()] : undefined;
    }, { what: 'both workers to answer /early' });
    for (const d of docs) {
      expect(d.result.v.slice(0, 2)).toEqual([true, 'early']);
      expect(namedThreads(d.pid, 'py-early')).toBe(1);
    }
    expect(tasksOf(nginx().masterPid)).toHaveLength(1);
  });

  it('a reload: new workers start CPython afresh and serve, the old ones exit', async () => {
    await getJson('/many?n=8&id=pre');
    const old = nginx().workerPids();
    await nginx().reload();
    const fresh = nginx().workerPids();
    expect(fresh.filter((p) => old.includes(p))).toEqual([]);
    const docs = await Promise.all(Array.from({ length: 6 }, (_, i) => getJson(`/many?n=20&conc=2&id=re${i}`)));
    expect(docs.map((d) => [d.calls, d.bad, d.failures])).toEqual(Array(6).fill([20, 0, 0]));
    for (const d of docs) expect(fresh).toContain(d.pid);
    await waitFor(() => old.every((p) => {
      try { process.kill(p, 0); return false; } catch { return true; }
    }), { timeout: 5000, what: 'the old workers, Python pollers and all, to exit' });
    expect(nginx().errorLog()).not.toMatch(/\[alert\]|\[crit\]|exited on signal/);
  });
});

describe('the loader and nffi_py.py under ASan/UBSan, without nginx', () => {
  it('check_nffi_python: echoes with NULs up to 1 MiB, errors, a burst, finish, a second load, a fork refused', () => {
    const build = `${ROOT}/native/build`;
    const r = spawnSync(`${build}/python-check/check_nffi_python`,
      [`${build}/python-check/libnffi_python.so`, `${build}/examples/python`],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error|FAILED/);
    expect(r.stdout).toMatch(/^check_nffi_python: \d+ passed$/m);
    expect(r.status).toBe(0);
    // what the bad cfg and the forked child said, one line each
    expect(r.stderr.trim().split('\n')).toEqual([
      '[nffi python] cfg must be "[dir/]module[?],entry[,cfg]", got "nffi_echo_py"',
      expect.stringMatching(/^\[nffi python\] CPython was started in process \d+, which forked this one \(\d+\); load the runtime in the worker only$/),
    ]);
  });
});
