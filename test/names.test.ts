// What `stack` says about a coroutine, against real nginx (1 worker) running
// test/fixtures/lua/names_app.lua: ids never reused within a worker's lifetime (lua-nginx-module
// reuses finished threads), a coroutine that has gone, frame names a reader would use, honest
// locals, proxies and hidden library upvalues.
import { readFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { oneLineError, runCli, startCli, stopCliAfterEach } from './harness/cli.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { holdRequest } from './harness/park-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const NAMES_HTTP = `
init_worker_by_lua_block { require("nffi.inspect").start() }
server {
    listen 127.0.0.1:$PORT;
    location / { content_by_lua_block { require("names_app").route() } }
}
`;

const nginx = useNginx({ workers: 1, http: NAMES_HTTP, luaPath: [FIXTURE_LUA], env: { PARK_HOLD_S: '20' } });

stopCliAfterEach();

const held: ClientRequest[] = [];
afterAll(() => {
  for (const r of held) r.destroy();
});

/** Starts a parked request; resolves once its headers arrive (the coroutine is parked then). */
const park = (path: string): Promise<void> => holdRequest(nginx().url(path), held);

const worker = () => nginx().workerPids()[0]!;

interface Co { id: number; kind: string; state: string; request: { uri: string } | null; frames: { function: string; source: string; line: number }[] }

async function coroutines(): Promise<Co[]> {
  const r = await runCli(['coroutines', String(worker()), '--json', '--all', '--frames', '8']);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).workers[0].coroutines;
}

/** The id of the coroutine serving `uri`, once it is parked. */
async function idOf(uri: string): Promise<number> {
  const co = await waitFor(async () => (await coroutines()).find((c) => c.request?.uri === uri && c.state === 'suspended'),
    { timeout: 20_000, interval: 100, what: `a coroutine serving ${uri}` });
  return co.id;
}

describe('coroutine ids', () => {
  it('are never reused across coroutine churn, and a finished one says so', async () => {
    const seen = new Map<number, string>();
    for (let round = 0; round < 3; round++) {
      const uri = `/names/slow?s=6&round=${round}`;
      await park(uri);
      const id = await idOf(uri);
      expect(seen.has(id), `id ${id} named ${seen.get(id)} before ${uri}`).toBe(false);
      seen.set(id, uri);
      // finished threads go back to lua-nginx-module's cache and serve the next requests
      await waitFor(async () => !(await coroutines()).some((c) => c.id === id && c.state !== 'dead'),
        { timeout: 15_000, interval: 200, what: `coroutine ${id} to finish` });
      await Promise.all(Array.from({ length: 20 }, () => http(nginx().url('/names/churn'))));
      const r = await runCli(['stack', String(worker()), String(id)]);
      expect(r.status).toBe(1);
      expect(oneLineError(r)).toBe(`nffi-inspect: coroutine ${id} of worker ${worker()} has finished`);
      expect(r.stdout).toBe('');
    }
    const ids = [...seen.keys()];
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  }, 150_000);

  it('an id never given is not "finished", and no error names a protocol method', async () => {
    const r = await runCli(['stack', String(worker()), '999999']);
    expect(r.status).toBe(1);
    const line = oneLineError(r);
    expect(line).toMatch(/unknown coroutine 999999 in worker \d+/);
    expect(line).not.toMatch(/Lua\.|getStack|getCoroutines/);
  });
});

const FIXTURE = readFileSync(`${FIXTURE_LUA}/names_app.lua`, 'utf8').split('\n');
/** The line of the fixture that starts with `text`. */
const lineOf = (text: string) => FIXTURE.findIndex((l) => l.startsWith(text)) + 1;

async function stackOf(uri: string, ...flags: string[]): Promise<{ text: string; json: any }> {
  await park(uri);
  const id = await idOf(uri);
  const text = await runCli(['stack', String(worker()), String(id), '--locals', ...flags]);
  expect(text.stderr).toBe('');
  expect(text.status).toBe(0);
  const json = await runCli(['stack', String(worker()), String(id), '--locals', '--json']);
  expect(json.status).toBe(0);
  return { text: text.stdout, json: JSON.parse(json.stdout) };
}

/** The text of frame `name` in `stack --locals` output: its line and the lines under it. */
function frameText(out: string, name: string): string {
  const lines = out.split('\n');
  const at = lines.findIndex((l) => new RegExp(`^#\\d+ ${name.replace(/\./g, '\\.')} at `).test(l));
  if (at < 0) throw new Error(`no frame ${name} in:\n${out}`);
  const end = lines.findIndex((l, i) => i > at && !l.startsWith('    '));
  return lines.slice(at, end < 0 ? undefined : end).join('\n');
}

describe('frames and locals', () => {
  it('names a frame as a reader would, not by the caller\'s variable; every frame has linedefined', async () => {
    const { text, json } = await stackOf('/names/slow?names=1');
    expect(text).toMatch(new RegExp(`^#\\d+ handlers\\.slow at .*names_app\\.lua:${lineOf('    local res, err = slow_call')}$`, 'm'));
    expect(text).toMatch(/^#\d+ slow_call at .*names_app\.lua:\d+$/m);
    expect(text).toMatch(/^#\d+ names_app\.route at /m);
    expect(text).toMatch(/^#\d+ main chunk at =content_by_lua\(nginx\.conf:\d+\):1$/m);
    expect(text).not.toMatch(/^#\d+ (h|\?) at /m);
    const slow = json.frames.find((f: any) => f.function === 'handlers.slow');
    expect(slow).toMatchObject({ called_as: 'h', linedefined: lineOf('function handlers.slow()') });
    for (const f of json.frames) expect(typeof f.linedefined, JSON.stringify(f)).toBe('number');
    expect(json.frames.find((f: any) => f.function === 'main chunk').linedefined).toBe(0);
    // the coroutines list carries the same names
    const co = (await coroutines()).find((c) => c.request?.uri === '/names/slow?names=1')!;
    expect(co.frames.map((f) => f.function)).toContain('handlers.slow');
  });

  it.each([
    ['/names/timer', 'park_timer', 'park_timer = function'],
    ['/names/thread', 'light', 'local function light'],
    ['/names/get', 'names_app.get', 'function _M.get()'],
    ['/names/user', 'user_entry', 'local function user_entry'],
  ])('%s: the frame is named %s', async (uri, name, def) => {
    await park(uri);
    const co = await waitFor(async () => (await coroutines()).find((c) => c.state === 'suspended' && c.frames.some((f) => f.function === name)),
      { timeout: 20_000, interval: 100, what: `a coroutine with a frame ${name}` });
    const r = await runCli(['stack', String(worker()), String(co.id), '--json']);
    const f = JSON.parse(r.stdout).frames.find((x: any) => x.function === name);
    expect(f.linedefined).toBe(lineOf(def));
  });

  it('a local the frame\'s call has not assigned yet is not listed; ngx.var is a proxy; library upvalues are hidden unless asked', async () => {
    const { text, json } = await stackOf('/names/slow?locals=1');
    const slow = frameText(text, 'handlers.slow');
    expect(slow).toMatch(/^ {4}n = 42$/m);
    expect(slow).not.toMatch(/^ {4}(res|err) = /m);
    expect(slow).toMatch(/^ {4}\(upvalue\) var = ngx\.var \(proxy\)$/m);
    expect(slow).not.toMatch(/^ {4}var = \{\}$/m);
    // slow_call keeps ngx.sleep and the nffi module at hand: hidden, and counted
    const call = frameText(text, 'slow_call');
    expect(call).not.toMatch(/function \[C\]/);
    expect(call, text).toMatch(/^ {4}\(2 library upvalues hidden\)$/m);
    expect(text, text).toMatch(/upvalues? of library code hidden \(C, ngx\.\*, modules\): --all-upvalues$/m);
    const jf = json.frames.find((f: any) => f.function === 'slow_call');
    expect(jf.upvalues.filter((v: any) => v.library).map((v: any) => v.name).sort()).toEqual(['nffi', 'sleep']);
    // asked for: shown
    const id = (await coroutines()).find((c) => c.request?.uri === '/names/slow?locals=1')!.id;
    const all = await runCli(['stack', String(worker()), String(id), '--locals', '--all-upvalues']);
    expect(frameText(all.stdout, 'slow_call')).toMatch(/^ {4}\(upvalue\) sleep = function \[C\]$/m);
    expect(all.stdout).not.toMatch(/library upvalues? hidden/);
  });

  it('a local the code does not read again shows as unavailable, not the stale value a trace exit left', async () => {
    // step() runs 2000 times (compiled), the last call parks from a trace exit: its `i` slot
    // was not written back (it held 57-ish before this fix)
    const { text } = await stackOf('/names/hot');
    const step = frameText(text, 'step');
    expect(step).toMatch(/^ {4}\(not used from here on, not shown: i, last, err\)$/m);
    expect(step).not.toMatch(/^ {4}i = /m);
    expect(step).toMatch(/^ {4}ok = true$/m);
    expect(frameText(text, 'handlers.hot')).toMatch(/^ {4}i = 2000$/m);
  });

  it('an nffi call parked in its semaphore shows no garbage numbers', async () => {
    const { text } = await stackOf('/names/slow?ffi=1');
    expect(text).toMatch(/^#\d+ handlers\.slow at /m);
    expect(text).not.toMatch(/= -?\d(\.\d+)?e-\d{3}\b/);
  });
});

describe('FFI tasks', () => {
  it('the coroutine a task waits in has the same names', async () => {
    await park('/names/slow?ffi=1&task=1');
    const task = await waitFor(async () => {
      const r = await runCli(['tasks', String(worker()), '--json']);
      if (r.status !== 0) throw new Error(r.stderr);
      return JSON.parse(r.stdout).workers[0].tasks.find((t: any) => t.coroutine);
    }, { timeout: 20_000, interval: 200, what: 'a pending task with its coroutine' });
    expect(task.coroutine.frames.map((f: any) => f.function)).toContain('handlers.slow');
  });
});

describe('breakpoint hits', () => {
  it('a hit\'s frames carry the same names and linedefined', async () => {
    const line = lineOf('    local n = 42');
    await http(nginx().url('/names/churn'));  // names_app.lua loaded: the breakpoint arms at once
    const cli = startCli(['breakpoint', String(worker()), `names_app.lua:${line}`, '--json']);
    await waitFor(() => cli.lines().some((l) => l.event === 'armed' && l.state === 'armed'),
      { timeout: 15_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
    await park('/names/slow?s=0.01&bp=1');
    const hit = await waitFor(() => cli.lines().find((l) => l.event === 'hit'),
      { timeout: 10_000, what: `a hit; out: ${cli.out()} err: ${cli.err()}` });
    // the hook never builds the index of loaded modules: the first hit, before any walk, has
    // route by the name it is called by; a timer of the agent builds the index meanwhile
    expect(hit.frames.map((f: any) => f.function)).toEqual(['handlers.slow', expect.stringMatching(/^(names_app\.)?route$/), 'main chunk']);
    await new Promise((r) => setTimeout(r, 500));
    await park('/names/slow?s=0.01&bp=2');
    const second = await waitFor(() => cli.lines().filter((l) => l.event === 'hit')[1],
      { timeout: 10_000, what: `a second hit; out: ${cli.out()} err: ${cli.err()}` });
    expect(second.frames.map((f: any) => f.function)).toEqual(['handlers.slow', 'names_app.route', 'main chunk']);
    expect(hit.frames[0]).toMatchObject({ called_as: 'h', linedefined: lineOf('function handlers.slow()'), line });
    for (const f of hit.frames) expect(typeof f.linedefined).toBe('number');
  });
});
