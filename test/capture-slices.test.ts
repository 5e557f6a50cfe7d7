// Captures too large for one go, against a real worker (issue 11): Lua.getStack takes a
// 5,000-entry local in slices (a budget step per table entry) and the answer is the same
// content, every entry there, as many times as it is asked; a breakpoint hit (in a hook, never
// sliced) captures at most 1,000 table entries in all and marks what it cut as truncated.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { RawAgent } from './harness/raw-agent.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-capture-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');
const HIT_LINE = readFileSync(join(FIXTURE_LUA, 'capture_app.lua'), 'utf8').split('\n').findIndex((l) => l.includes('-- HIT')) + 1;
/** snapshot.lua's cap on the table entries of one hit. */
const MAX_HIT_ENTRIES = 1000;

const nginx = useNginx({
  workers: 1,
  luaPath: [FIXTURE_LUA],
  env: { NFFI_INSPECT_RUN_DIR: RUN_DIR },
  http: `
init_worker_by_lua_block { require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") }) }
server {
    listen 127.0.0.1:$PORT;
    location / { content_by_lua_block { require("capture_app").route() } }
}
`,
});

interface Value { type: string; value?: unknown; length?: number; truncated?: boolean; ref?: string; entries?: { key: Value; value: Value }[] }

let agent: RawAgent;
let parked: ClientRequest | undefined;
let coroutine = 0;

/** Every table entry in v, nested ones too. */
function entries(v: Value): number {
  return (v.entries ?? []).reduce((n, e) => n + 1 + entries(e.key) + entries(e.value), 0);
}

function refs(v: Value, out: string[]): string[] {
  if (v.type === 'table' && v.ref) out.push(v.ref);
  for (const e of v.entries ?? []) {
    refs(e.key, out);
    refs(e.value, out);
  }
  return out;
}

async function getStackStats(): Promise<{ requests: number; yields: number }> {
  const r = await agent.request('Agent.getStats');
  return r.result.methods['Lua.getStack'] ?? { requests: 0, yields: 0 };
}

beforeAll(async () => {
  const pid = nginx().workerPids()[0];
  parked = await new Promise<ClientRequest>((resolve, reject) => {
    const req = request(nginx().url('/park'), { agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('error', () => undefined);
      resolve(req);
    });
    req.on('error', reject);
    req.end();
  });
  agent = await waitFor(() => RawAgent.attach(RUN_DIR, pid, 2_000), { timeout: 15_000, interval: 100, what: `a session with worker ${pid}` });
  const r = await agent.request('Lua.getCoroutines', { frames: 8 });
  const co = r.result.coroutines.find((c: any) => c.frames.some((f: any) => f.function === 'hold'));
  expect(co, 'the parked coroutine').toBeTruthy();
  coroutine = co.id;
});

afterAll(() => {
  parked?.destroy();
  agent?.close();
  rmSync(TMP, { recursive: true, force: true });
});

describe('Lua.getStack of a 5,000-entry local', () => {
  const params = () => ({ coroutine, locals: true, depth: 3, keys: 1000, string_bytes: 16 });

  it('comes in slices, every entry there, the same content each time (run twice)', async () => {
    const answers: unknown[] = [];
    for (let run = 0; run < 2; run++) {
      const before = await getStackStats();
      const r = await agent.request('Lua.getStack', params(), 30_000);
      expect(r.error, JSON.stringify(r.error)).toBeUndefined();
      const after = await getStackStats();
      expect(after.requests - before.requests).toBe(1);
      // 5,000 + 2,500 entries do not fit one 0.75 ms slice: the capture yielded
      expect(after.yields - before.yields, 'yields of this request').toBeGreaterThan(0);

      const frame = r.result.frames.find((f: any) => f.function === 'hold');
      const local = (name: string): Value => frame.locals.find((l: any) => l.name === name).value;
      const big = local('big');
      expect(big.truncated).toBeUndefined();
      expect(big.entries).toHaveLength(5);
      for (const [i, row] of big.entries!.entries()) {
        expect(row.key).toEqual({ type: 'number', value: i + 1 });
        expect(row.value.truncated, `row ${i + 1}`).toBeUndefined();
        expect(row.value.entries).toHaveLength(1000);
        row.value.entries!.forEach((e, j) => {
          expect(e.key).toEqual({ type: 'number', value: j + 1 });
          expect(e.value).toEqual({ type: 'string', value: 'x'.repeat(16), length: 60 * 1024, truncated: true });
        });
      }
      const grid = local('grid');
      expect(grid.entries).toHaveLength(50);
      for (const [i, row] of grid.entries!.entries()) {
        expect(row.value.entries!.map((e) => e.value.value)).toEqual(Array.from({ length: 50 }, (_, j) => (i + 1) * 100 + j + 1));
      }
      const all = frame.locals.flatMap((l: any) => refs(l.value, []));
      expect(new Set(all).size, 'table refs unique in the answer').toBe(all.length);
      answers.push(r.result);
    }
    expect(answers[1]).toEqual(answers[0]);
  });
});

describe('a breakpoint hit on three locals naming one 50 x 50 table', () => {
  it(`captures at most ${MAX_HIT_ENTRIES} table entries in all, the rest marked truncated (run twice)`, async () => {
    for (let run = 0; run < 2; run++) {
      const id = 500 + run;
      const set = await agent.request('Debugger.setBreakpoint', { id, spec: { url: 'capture_app.lua', line: HIT_LINE, count: 1 } });
      expect(set.error, JSON.stringify(set.error)).toBeUndefined();
      expect((await http(nginx().url('/grid'))).body.toString('utf8').trim()).toBe('150');
      const hit = await agent.waitFor((f) => f.method === 'Debugger.hit' && f.params?.id === id, 10_000, `a hit of bp ${id}`);
      const vars: Value[] = [...Object.values(hit.params.locals as Record<string, Value>),
        ...Object.values(hit.params.upvalues as Record<string, Value>), ...(hit.params.varargs as Value[])];
      const total = vars.reduce((n, v) => n + entries(v), 0);
      expect(total).toBeLessThanOrEqual(MAX_HIT_ENTRIES);
      // depth 2 x 50 keys: 2,550 entries a local, 7,650 for the three without the cap
      expect(total).toBeGreaterThan(MAX_HIT_ENTRIES - 50);
      const locals = hit.params.locals as Record<string, Value>;
      for (const name of ['a', 'b', 'c']) expect(locals[name]?.type, name).toBe('table');
      const cut = (v: Value): boolean => v.truncated === true || (v.entries ?? []).some((e) => cut(e.value));
      expect(['a', 'b', 'c'].some((name) => cut(locals[name]!))).toBe(true);
    }
  });
});
