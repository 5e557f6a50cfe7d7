// One execution of a breakpoint line is one hit, also when the line's call
// yields and the coroutine is resumed there later (issue 10). LuaJIT reports a
// line again when control comes back into its frame after a call or a resume;
// the hooks must tell that repeat from a new execution, whatever other
// coroutines do meanwhile and however the hook changes mode. Real nginx (2
// workers as nobody), test/fixtures/lua/yield_app.lua: a breakpoint line per
// kind of yield (ngx.sleep, a cosocket read, an ngx.semaphore wait, an nffi
// call), a recursion through one that yields on every level, and some that do
// not yield (one whose call raises, a comparator table.sort calls: no new
// execution may be taken for a repeat either), hit by concurrent requests while another
// breakpoint is armed and removed, other requests enter and leave the same
// functions and (C hook) the hook is installed again over itself; with the
// call-gated C hook, the ungated C hook and the Lua fallback hook.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { AgentClient } from './harness/agent-client.js';
import { markerLine } from './harness/bp-app.js';
import { FIXTURE_LUA, YIELD_APP_HTTP } from './harness/yield-app.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-yield-test-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');
const nginx = useNginx({ workers: 2, http: YIELD_APP_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN_DIR } });

const APP = 'yield_app.lua';
const KINDS = ['sleep', 'sock', 'sema', 'nffi', 'plain', 'oneline', 'deep', 'unwind', 'sort'] as const;
type Kind = (typeof KINDS)[number];
const LINE = Object.fromEntries(KINDS.map((k) => [k, markerLine(APP, k)])) as Record<Kind, number>;
const ELSEWHERE = markerLine(APP, 'elsewhere');
/** Executions of the line per request: the loops run it N times, the recursion DEPTH; table.sort
 * as often as it compares (counted by the fixture). */
const N = 10;
const DEPTH = 6;
const PER_REQUEST: Record<Kind, number | undefined> = {
  sleep: 1, sock: 1, sema: 1, nffi: 1, plain: N, oneline: N, deep: DEPTH, unwind: N, sort: undefined,
};
/** Concurrent requests per kind in one round, and rounds per hook kind. */
const CONCURRENT = 24;
const ROUNDS = 3;

let clients: AgentClient[] = [];
beforeAll(async () => {
  clients = await Promise.all(nginx().workerPids().map((pid) => AgentClient.attach({ runDir: RUN_DIR, pid })));
});
afterAll(() => {
  for (const c of clients) c.close();
  rmSync(TMP, { recursive: true, force: true });
});

async function get(path: string): Promise<string> {
  const res = await http(nginx().url(path), { timeout: 15_000 });
  expect(res.status, `${path}: ${res.body.toString('utf8')}`).toBe(200);
  return res.body.toString('utf8');
}

/** Sends path until every worker has answered it; the answers by worker pid. */
async function onEveryWorker(path: string): Promise<Map<number, any>> {
  const seen = new Map<number, any>();
  const pids = nginx().workerPids();
  await waitFor(async () => {
    const doc = JSON.parse(await get(path));
    seen.set(doc.pid, doc);
    return pids.every((p) => seen.has(p));
  }, { what: `${path} on both workers`, interval: 0 });
  return seen;
}

let nextId = 700;
async function setBp(spec: object): Promise<number> {
  const id = nextId++;
  const results = await Promise.all(clients.map((c) => c.request('Debugger.setBreakpoint', { spec, id })));
  for (const r of results) expect(r.breakpoint, JSON.stringify(r)).toMatchObject({ id, state: 'armed' });
  return id;
}

async function remove(id: number): Promise<void> {
  await Promise.all(clients.map((c) => c.request('Debugger.removeBreakpoint', { id }).catch(() => undefined)));
}

async function hitsOf(id: number): Promise<number> {
  const lists = await Promise.all(clients.map((c) => c.request('Debugger.getBreakpoints')));
  return lists.flatMap((l) => l.breakpoints.filter((b: any) => b.id === id)).reduce((n: number, b: any) => n + b.hits, 0);
}

async function counts(): Promise<Record<Kind, number>> {
  return JSON.parse(await get('/counts'));
}

async function bpStats(): Promise<any[]> {
  return Promise.all(clients.map(async (c) => (await c.request('Agent.getStats')).breakpoints));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pathOf(kind: Kind, i: number, skip = false): string {
  // delays from 2 to 41 ms: resumes interleave with other coroutines' calls and yields
  const per = PER_REQUEST[kind];
  const arg = per === undefined ? '' : per > 1 ? `n=${per}` : `ms=${2 + ((i * 7) % 40)}`;
  return `/${kind}?${arg}${skip ? '&skip=1' : ''}`;
}

type HookKind = 'c' | 'c_ungated' | 'lua';

/** The hook the agent installs with the first breakpoint armed (none may be armed now). */
async function useHook(kind: HookKind): Promise<void> {
  const lists = await Promise.all(clients.map((c) => c.request('Debugger.getBreakpoints')));
  expect(lists.flatMap((l) => l.breakpoints), 'no breakpoint armed while the hook kind changes').toEqual([]);
  for (const doc of (await onEveryWorker(`/hook?kind=${kind}`)).values()) {
    expect(doc).toMatchObject({ use_c_hook: kind !== 'lua', gate: kind !== 'c_ungated' });
  }
}

/**
 * Until stop(): a breakpoint elsewhere armed and removed over and over (the
 * gated hook's lines forced on, walks, targets renamed, a watching set
 * dropped), requests entering and leaving the breakpointed functions before
 * their lines, and (C hook) the hook installed again over itself.
 */
function churn(kind: HookKind): { stop: () => Promise<{ arms: number; skips: number; reinstalls: number }> } {
  let stopped = false;
  const done = { arms: 0, skips: 0, reinstalls: 0 };
  const arming = (async () => {
    while (!stopped) {
      const id = await setBp({ url: APP, line: ELSEWHERE, rate: 1e6, count: 1e9 });
      await get(`/elsewhere?n=3`);
      await sleep(15);
      await remove(id);
      done.arms++;
      await sleep(10);
    }
  })();
  const skipping = (async () => {
    for (let i = 0; !stopped; i++) {
      await Promise.all(KINDS.map((k) => get(pathOf(k, i, true))));
      done.skips += KINDS.length;
    }
  })();
  const reinstalling = (async () => {
    while (!stopped && kind !== 'lua') {
      const doc = JSON.parse(await get('/reinstall'));
      if (doc.reinstalled) done.reinstalls++;
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await Promise.all([arming, skipping, reinstalling]);
      return done;
    },
  };
}

async function hookMode(): Promise<string> {
  return JSON.stringify((await bpStats()).map((b) => ({
    hook_kind: b.hook_kind, gated: b.native?.gated, watching: b.native?.watching, mask: b.native?.mask,
    repeats: b.native?.repeats, watch_reason: b.native?.watch_reason,
  })));
}

describe('one hit per execution of a breakpoint line, also across a yield', () => {
  it.each<HookKind>(['c', 'c_ungated', 'lua'])('%s hook: hits == executions, concurrent requests, the hook changing mode', async (kind) => {
    await useHook(kind);
    const ids = {} as Record<Kind, number>;
    try {
      for (const k of KINDS) ids[k] = await setBp({ url: APP, line: LINE[k], rate: 1e6, count: 1e9 });
      for (const b of await bpStats()) {
        expect(b.hook_kind, await hookMode()).toBe(kind === 'lua' ? 'lua' : 'c');
        if (kind !== 'lua') expect(b.native.gated, await hookMode()).toBe(kind === 'c');
      }
      const before = await counts();
      const hits0 = Object.fromEntries(await Promise.all(KINDS.map(async (k) => [k, await hitsOf(ids[k])]))) as Record<Kind, number>;
      const sent = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
      const bg = churn(kind);
      let done;
      try {
        for (let round = 0; round < ROUNDS; round++) {
          await Promise.all(KINDS.flatMap((k) => Array.from({ length: CONCURRENT }, async (_, i) => {
            await get(pathOf(k, round * CONCURRENT + i));
            sent[k]++;
          })));
        }
      } finally {
        done = await bg.stop();
      }
      expect(done.arms, 'the other breakpoint was armed and removed during the run').toBeGreaterThan(0);
      expect(done.skips).toBeGreaterThan(0);
      if (kind !== 'lua') expect(done.reinstalls, 'the hook was installed again during the run').toBeGreaterThan(0);
      const after = await counts();
      const mode = await hookMode();
      const executions = {} as Record<Kind, number>;
      const hits = {} as Record<Kind, number>;
      for (const k of KINDS) {
        executions[k] = after[k] - before[k];
        const per = PER_REQUEST[k];
        if (per === undefined) expect(executions[k], `${k}: executions of the line`).toBeGreaterThanOrEqual(sent[k]);
        else expect(executions[k], `${k}: executions of the line`).toBe(sent[k] * per);
        // hits are counted in the hook itself: all in by the time the requests answered
        hits[k] = (await hitsOf(ids[k])) - hits0[k];
      }
      expect(hits, `${kind} hook: hits by line vs executions; ${JSON.stringify(done)}; workers ${mode}`).toEqual(executions);
    } finally {
      for (const id of Object.values(ids)) await remove(id);
    }
  });

  it('prints the cost: an interpreted loop with a call per iteration, per hook kind', async () => {
    /** Median CPU µs of /work over `times` requests (one worker or the other). */
    async function cpu(times = 15): Promise<number> {
      const v: number[] = [];
      for (let i = 0; i < times; i++) v.push(Number(await get('/work?n=20000')));
      v.sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)];
    }
    const base = await cpu();
    const rows: string[] = [];
    for (const kind of ['c', 'c_ungated', 'lua'] as HookKind[]) {
      await useHook(kind);
      // armed on another function: the loop runs outside every armed one
      const other = await setBp({ url: APP, line: ELSEWHERE, rate: 1e6, count: 1e9 });
      const elsewhere = await cpu();
      // armed on a line of the loop's own function that never runs: inside, no hit
      const own = await setBp({ url: APP, line: markerLine(APP, 'never'), rate: 1e6, count: 1e9 });
      const inside = await cpu();
      expect(await hitsOf(own)).toBe(0);
      await remove(own);
      await remove(other);
      rows.push(`${kind}: armed elsewhere ${elsewhere.toFixed(0)} µs (${(elsewhere / base).toFixed(2)}x), ` +
        `armed in the loop's function ${inside.toFixed(0)} µs (${(inside / base).toFixed(2)}x)`);
    }
    await useHook('c');
    console.log(`[yield cost] 20k interpreted iterations with a call each: ${base.toFixed(0)} µs unarmed; ${rows.join('; ')}`);
    expect(base).toBeGreaterThan(0);
  });

  it('the C hook is back once every breakpoint is removed, and hits as before', async () => {
    await useHook('c');
    const id = await setBp({ url: APP, line: LINE.sleep, rate: 1e6, count: 1e9 });
    try {
      for (const b of await bpStats()) expect(b.hook_kind).toBe('c');
      const before = (await counts()).sleep;
      await Promise.all(Array.from({ length: 10 }, (_, i) => get(pathOf('sleep', i))));
      expect((await counts()).sleep - before).toBe(10);
      expect(await hitsOf(id), await hookMode()).toBe(10);
    } finally {
      await remove(id);
    }
    await waitFor(async () => (await bpStats()).every((b) => b.hook === false && b.armed === 0), { what: 'no hook, nothing armed' });
  });
});
