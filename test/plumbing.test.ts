// The plumbing rule at the agent (lua/nffi/inspect/plumbing.lua, Lua.getCoroutines `skip`): a
// view that shows one line per coroutine asks for the frames from the first one in application
// code, and gets that frame, not the C function and lua-resty-core / nffi frames above it. The
// agent's globs must mean what store/frames.ts's mean: both are held to the same cases here.
import { spawnSync } from 'node:child_process';
import type { ClientRequest } from 'node:http';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PLUMBING, isPlumbing, plumbingRule } from '../store/frames.js';
import { AgentClient, AgentError } from './harness/agent-client.js';
import { ROOT } from './harness/cli.js';
import { useNginx, waitFor } from './harness/nginx.js';
import { FIXTURE_LUA, holdRequest, PARK_APP_HTTP } from './harness/park-app.js';

const NAMES = [
  '@/usr/share/lua/5.1/ngx/semaphore.lua', '@/usr/local/share/lua/5.1/resty/core/base.lua', '@/srv/app/ngx/x/y.lua',
  '@/work/main/lua/nffi/call.lua', '@nffi/init.lua', '=nffi.call', '@/srv/app/demo_app.lua', '@/srv/app/nffi.lua',
  '@/srv/app/nffi_app.lua', '=content_by_lua(nginx.conf:25)', '=[C]', '@resty/lrucache.lua', '@/a/resty/lock.lua',
  '@/srv/my-resty/core/x.lua', '@ngx/semaphore.lua', '@/x/ngx/semaphore.luac', '@/srv/app/a.b.lua', '@/srv/app/aXb.lua',
  '@/srv/app/sub/deep/file.lua', '@file.lua', '@/srv/app/f?.lua',
];
const GLOBS = [
  ...DEFAULT_PLUMBING, 'app/*.lua', 'app/**', 'app/**/file.lua', '**/deep/*', 'a.b.lua', 'f?.lua', 'f\\?.lua',
  'content_by_lua*', '*', '**', 'sub/deep', 'srv/app/sub/**/file.lua', '=nffi.*',
];

function luaAnswers(cases: [string, string][]): boolean[] {
  const script = `package.path = ${JSON.stringify(`${ROOT}/lua/?.lua;`)} .. package.path
local plumbing = require "nffi.inspect.plumbing"
for line in io.lines() do
  local glob, name = line:match("^(.-)\\t(.*)$")
  io.write(plumbing.compile(glob)(name) and "1" or "0", "\\n")
end`;
  const r = spawnSync('lua5.1', ['-e', script], { input: cases.map(([g, n]) => `${g}\t${n}\n`).join(''), encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return r.stdout.trim().split('\n').map((x) => x === '1');
}

describe('plumbing globs', () => {
  it('the agent and store/frames.ts agree on every glob and chunk name', () => {
    // (=[C] is a C function to both whatever the globs say: not a glob case)
    const cases = GLOBS.flatMap((g) => NAMES.filter((n) => n !== '=[C]').map((n): [string, string] => [g, n]));
    const lua = luaAnswers(cases);
    const ts = cases.map(([g, n]) => isPlumbing({ source: n, line: 1, what: 'Lua' }, plumbingRule({ env: g })));
    const differ = cases.flatMap(([g, n], i) => (lua[i] !== ts[i] ? [`${g} ~ ${n}: lua ${lua[i]}, ts ${ts[i]}`] : []));
    expect(differ).toEqual([]);
    // and the default list says what it should of the usual suspects (ngx/*.lua is one level:
    // not app/ngx/x/y.lua; a glob starts at a / : not my-resty/core)
    const def = plumbingRule({ env: undefined });
    expect(NAMES.filter((n) => isPlumbing({ source: n, line: 1, what: 'Lua' }, def))).toEqual([
      '@/usr/share/lua/5.1/ngx/semaphore.lua', '@/usr/local/share/lua/5.1/resty/core/base.lua',
      '@/work/main/lua/nffi/call.lua', '@nffi/init.lua', '=nffi.call', '@/srv/app/nffi.lua', '=[C]', '@/a/resty/lock.lua',
      '@ngx/semaphore.lua',
    ]);
  });
});

const TMP = mkdtempSync(join(tmpdir(), 'nffi-plumbing-test-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');

describe('Lua.getCoroutines with skip', () => {
  const nginx = useNginx({
    workers: 1, http: PARK_APP_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN_DIR, PARK_HOLD_S: '20' },
  });
  const held: ClientRequest[] = [];
  let client: AgentClient | undefined;
  afterAll(() => {
    for (const r of held) r.destroy();
    client?.close();
    rmSync(TMP, { recursive: true, force: true });
  });
  const park = (path: string): Promise<void> => holdRequest(nginx().url(path), held);
  const waiting = (cos: any[], uri: string) => cos.find((c) => c.request?.uri === uri);

  it('starts each waiting coroutine at the handler line, says how many frames it left out', async () => {
    await park('/park/sema');
    await park('/park/ffi?task=1');
    client = await AgentClient.attach({ runDir: RUN_DIR, pid: nginx().workerPids()[0]! });
    const skip = DEFAULT_PLUMBING.join(',');
    const both = await waitFor(async () => {
      const r = await client!.request('Lua.getCoroutines', { frames: 1, skip });
      const s = waiting(r.coroutines, '/park/sema');
      const f = waiting(r.coroutines, '/park/ffi?task=1');
      return s && f && s.frames.length && f.frames.length ? { s, f } : undefined;
    }, { what: 'both parked requests waiting', timeout: 10_000 });
    for (const [c, fn] of [[both.s, 'sema'], [both.f, 'ffi']] as const) {
      expect(c.frames).toHaveLength(1);
      expect(c.frames[0].source).toMatch(/park_app\.lua$/);
      expect(c.frames[0].function).toMatch(new RegExp(fn));
      expect(c.skipped).toBeGreaterThanOrEqual(2);
    }
    // without skip the same coroutines start in C, with the frames the agent left out above
    const plain = await client.request('Lua.getCoroutines', { frames: 8 });
    for (const uri of ['/park/sema', '/park/ffi?task=1']) {
      const c = waiting(plain.coroutines, uri);
      const first = c.frames.findIndex((f: any) => /park_app\.lua$/.test(f.source));
      expect(c.frames[0].what).toBe('C');
      expect(first).toBe(uri === '/park/sema' ? both.s.skipped : both.f.skipped);
      expect(c.frames[first].line).toBe(uri === '/park/sema' ? both.s.frames[0].line : both.f.frames[0].line);
    }
  });

  it('FFI.getTasks: the waiter from its handler line, with the request it serves', async () => {
    const skip = DEFAULT_PLUMBING.join(',');
    // a request parked after the last walk: no walk has seen its coroutine
    await park('/park/ffi?task=2');
    const r = await waitFor(async () => {
      const got = await client!.request('FFI.getTasks', { skip });
      return got.tasks.some((x: any) => x.req_preview.length && x.coroutine && x.id > 1) && got.tasks.length >= 2 ? got : undefined;
    }, { what: 'both parked tasks', timeout: 10_000 });
    const late = r.tasks.find((x: any) => x.coroutine?.request?.uri === '/park/ffi?task=2');
    expect(late, JSON.stringify(r.tasks)).toBeDefined();
    expect(late.coroutine.frames[0].source).toMatch(/park_app\.lua$/);
    const t = r.tasks.find((x: any) => x.coroutine?.request?.uri === '/park/ffi?task=1');
    expect(t, JSON.stringify(r.tasks)).toBeDefined();
    expect(t.coroutine.request.method).toBe('GET');
    expect(t.coroutine.frames[0].source).toMatch(/park_app\.lua$/);
    expect(t.coroutine.frames[0].function).toMatch(/ffi/);
    expect(t.coroutine.skipped).toBeGreaterThanOrEqual(2);
    // without skip: the top frames the agent always sent (C, then plumbing), the request too
    const plain = await client!.request('FFI.getTasks', {});
    const same = plain.tasks.find((x: any) => x.id === t.id);
    expect(same.coroutine.frames[0].what).toBe('C');
    expect(same.coroutine.skipped).toBeUndefined();
    expect(same.coroutine.request).toEqual(t.coroutine.request);
  });

  it('refuses a skip list that is not a short string of patterns', async () => {
    const err = await client!.request('Lua.getCoroutines', { skip: 'x'.repeat(2001) }).catch((e: AgentError) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).message).toMatch(/skip is longer than 2000 bytes/);
    const many = Array.from({ length: 40 }, (_, i) => `p${i}`).join(',');
    await expect(client!.request('Lua.getCoroutines', { skip: many })).rejects.toMatchObject({ message: expect.stringMatching(/more than 32 patterns/) });
    await expect(client!.request('FFI.getTasks', { skip: many })).rejects.toMatchObject({ message: expect.stringMatching(/more than 32 patterns/) });
  });
});
