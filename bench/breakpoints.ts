// What an armed breakpoint costs, side by side in one run: req/s of a JIT-heavy and an
// interpreter-heavy handler with no hook, with a breakpoint armed on a line they never
// run (the hook at rest: watching where the machine allows it), with one hardware
// watchpoint alone and no hook (what the platform charges for a debug register in
// use: the floor under watching), the same breakpoint with watchpoints off (a call
// hook), a C call hook that does nothing (LuaJIT's own call-hook path: the floor
// under any hook gated by calls), every line hooked, and lua-resty-inspect's way (a
// Lua line hook calling debug.getinfo per line); and the cost of one hit (a frame
// with 10 locals), timed inside the worker.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Breakpoints } from '../probe/breakpoints.js';
import { Session } from '../probe/session.js';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';
import { wrk } from './wrk.js';

const BENCH_LUA = fileURLToPath(new URL('../../bench/lua', import.meta.url));
const FILE = 'bench_bp.lua';
const ROUNDS = 9;
const SECONDS = 2;

function lineOf(marker: string): number {
  return readFileSync(`${BENCH_LUA}/${FILE}`, 'utf8').split('\n').findIndex((l) => l.includes(marker)) + 1;
}

const HTTP = `
init_worker_by_lua_block { require("nffi.inspect").start() }
server {
    listen 127.0.0.1:$PORT;
    location = /jit { content_by_lua_block { require("bench_bp").jit_heavy() } }
    location = /interp { content_by_lua_block { require("bench_bp").interp_heavy() } }
    location = /hitloop { content_by_lua_block { require("bench_bp").hit_loop() } }
    location = /inspect_on { content_by_lua_block { require("bench_bp").resty_inspect(true) } }
    location = /inspect_off { content_by_lua_block { require("bench_bp").resty_inspect(false) } }
    location = /floor_on { content_by_lua_block { require("bench_bp").floor(true) } }
    location = /floor_off { content_by_lua_block { require("bench_bp").floor(false) } }
    location = /gate_on { content_by_lua_block { require("bench_bp").gate(true) } }
    location = /gate_off { content_by_lua_block { require("bench_bp").gate(false) } }
    location = /big_heap { content_by_lua_block { require("bench_bp").big_heap(tonumber(ngx.var.arg_n)) } }
    location = /watchpoint_on { content_by_lua_block { require("bench_bp").watchpoint(true) } }
    location = /watchpoint_off { content_by_lua_block { require("bench_bp").watchpoint(false) } }
    location = /watch_on { content_by_lua_block { require("bench_bp").watch(true) } }
    location = /watch_off { content_by_lua_block { require("bench_bp").watch(false) } }
}`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function get(nginx: NginxInstance, path: string): Promise<string> {
  const res = await fetch(nginx.url(path));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  return text;
}

async function withBreakpoint<T>(bps: Breakpoints, line: number, fn: () => Promise<T>): Promise<T> {
  const { id } = await bps.set({ url: FILE, line, rate: 1e6, count: 1e9, timeout_ms: 600_000 });
  try {
    return await fn();
  } finally {
    await bps.remove(id);
  }
}

/** The armed hook's state in the worker (Agent.getStats breakpoints.native). */
async function hookState(session: Session): Promise<any> {
  const pid = session.targets().find((t) => t.attached)!.pid;
  const stats: any = await session.call(pid, 'Agent.getStats', {});
  return stats?.breakpoints?.native;
}

/** fn once the armed hook is at rest (the agent's walk after arming done, no
 * coroutine inside): watching, or a call hook where watchpoints are refused
 * (callOnly: watchpoints switched off). Records which in `modes`. */
async function atRest<T>(session: Session, callOnly: boolean, modes: Set<string>, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const n = await hookState(session);
    const refused = n?.watch_reason !== '';
    if (n && n.inside === 0 && (callOnly || refused ? n.mask === 1 && !n.watching : n.watching)) {
      modes.add(n.watching ? 'watchpoints, no hook' : `call hook${refused && !callOnly ? ` (${n.watch_reason})` : ''}`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`the hook did not come to rest: ${JSON.stringify(n)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

/** fn with the agent's C hook sending every line (no call gating), for comparison. */
async function ungated<T>(nginx: NginxInstance, fn: () => Promise<T>): Promise<T> {
  await get(nginx, '/gate_off');
  try {
    return await fn();
  } finally {
    await get(nginx, '/gate_on');
  }
}

const armedModes = new Set<string>();

async function reqPerSec(nginx: NginxInstance, session: Session, bps: Breakpoints, path: string): Promise<string[]> {
  const runs: Record<string, number[]> = { none: [], armed: [], callhook: [], watchpoint: [], floor: [], ungated: [], resty: [] };
  let errors = 0;
  const measure = async (key: string) => {
    const r = await wrk(nginx.url(path), { seconds: SECONDS, connections: 16, cpu: 1 });
    runs[key]!.push(r.rps);
    errors += r.errors;
  };
  // one wrk run per configuration; the order turns by one each round, so no
  // configuration always runs first (or right after the same other one)
  const configs: Array<() => Promise<void>> = [
    () => measure('none'),
    () => withBreakpoint(bps, lineOf('BP-NEVER'), () => atRest(session, false, armedModes, () => measure('armed'))),
    async () => {
      await get(nginx, '/watch_off');
      try {
        await withBreakpoint(bps, lineOf('BP-NEVER'), () => atRest(session, true, new Set(), () => measure('callhook')));
      } finally {
        await get(nginx, '/watch_on');
      }
    },
    async () => {
      if ((await get(nginx, '/watchpoint_on')).trim() !== 'ok') return;
      try { await measure('watchpoint'); } finally { await get(nginx, '/watchpoint_off'); }
    },
    async () => {
      await get(nginx, '/floor_on');
      try { await measure('floor'); } finally { await get(nginx, '/floor_off'); }
    },
    () => ungated(nginx, () => withBreakpoint(bps, lineOf('BP-NEVER'), () => measure('ungated'))),
    async () => {
      await get(nginx, '/inspect_on');
      try { await measure('resty'); } finally { await get(nginx, '/inspect_off'); }
    },
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < configs.length; i++) await configs[(i + round) % configs.length]!();
  }
  // loss: the median over rounds of each round's own ratio to its no-hook run,
  // so a slow drift of the machine between rounds cancels out
  const none = median(runs.none!);
  const ratio = (key: string) => median(runs[key]!.map((x, i) => x / runs.none![i]!));
  const loss = (key: string) => `${((1 - ratio(key)) * 100).toFixed(1)}%`;
  const cell = (key: string) => [median(runs[key]!).toFixed(0), loss(key)];
  const wp = runs.watchpoint!.length ? cell('watchpoint') : ['refused', '-'];
  return [path, none.toFixed(0), ...cell('armed'), ...wp, ...cell('callhook'), ...cell('floor'), ...cell('ungated'),
    median(runs.resty!).toFixed(0), `${(1 / ratio('resty')).toFixed(1)}×`, String(errors)];
}

// 200 calls per request stay under the agent's hit ring (256), so every hit is a full
// snapshot, not a counted drop; pauses between requests let the writer ship them.
async function hitCost(nginx: NginxInstance, bps: Breakpoints): Promise<string[]> {
  const perCall = async () => {
    const xs: number[] = [];
    for (let i = 0; i < 5; i++) {
      xs.push(Number((await get(nginx, '/hitloop?n=200')).split(' ')[0]));
      await new Promise((r) => setTimeout(r, 300));
    }
    return Math.min(...xs);
  };
  const plain = await perCall();
  const armed = await withBreakpoint(bps, lineOf('BP-HIT'), perCall);
  const always = await ungated(nginx, () => withBreakpoint(bps, lineOf('BP-HIT'), perCall));
  return [plain.toFixed(2), armed.toFixed(2), (armed - plain).toFixed(1), always.toFixed(2), (always - plain).toFixed(1)];
}

// The heap walk that watching waits for, on a heap grown by `objects` tables:
// CPU of the whole walk and of its longest slice (the worker's longest stall).
async function heapWalk(nginx: NginxInstance, session: Session, bps: Breakpoints, objects: number): Promise<string[]> {
  await get(nginx, `/big_heap?n=${objects}`);
  return withBreakpoint(bps, lineOf('BP-NEVER'), async () => {
    const deadline = Date.now() + 30_000;
    let n = await hookState(session);
    while (!(n?.watching || (n?.watch_reason && n.watch_reason !== 'heap walk under way'))) {
      if (Date.now() > deadline) throw new Error(`no heap walk result: ${JSON.stringify(n)}`);
      await new Promise((r) => setTimeout(r, 100));
      n = await hookState(session);
    }
    return [String(n.heap_objects), (n.heap_walk_us / 1000).toFixed(1), String(n.heap_slices), String(n.heap_slice_max_us),
      n.watching ? 'watching' : n.watch_reason];
  });
}

export async function runBreakpointsBench(): Promise<void> {
  const nginx = await startNginx({ workers: 1, main: 'worker_cpu_affinity 01;', luaPath: [BENCH_LUA], http: HTTP });
  const session = await Session.open(nginx.masterPid);
  try {
    const bps = new Breakpoints(session);
    const rows = [await reqPerSec(nginx, session, bps, '/jit'), await reqPerSec(nginx, session, bps, '/interp')];
    process.stdout.write(`\n== breakpoints: req/s, median of ${ROUNDS} wrk runs of ${SECONDS} s (worker on CPU 0, wrk on CPU 1);\n` +
      '   loss: median of each round\'s ratio to that round\'s no-hook run\n');
    process.stdout.write(`armed elsewhere: ${[...armedModes].join(', ')}\n`);
    process.stdout.write(formatTable(
      ['handler', 'no hook', 'armed elsewhere', 'loss', 'a watchpoint alone', 'loss', 'armed, watchpoints off', 'loss',
        'empty call hook', 'loss',
        'every line hooked', 'loss',
        'resty-inspect way', 'slower', 'errors'], rows) + '\n');
    const hit = await hitCost(nginx, bps);
    process.stdout.write('\n== one hit: a frame with 10 locals, µs per call timed inside the worker\n');
    process.stdout.write(formatTable(['no breakpoint', 'breakpoint on the line', 'cost per hit µs', 'every line hooked', 'cost per hit µs'], [hit]) + '\n');
    const walks = [await heapWalk(nginx, session, bps, 0), await heapWalk(nginx, session, bps, 1_000_000)];
    process.stdout.write('\n== heap walk before watching (the worker as above, then with 1,000,000 more tables)\n');
    process.stdout.write(formatTable(['heap objects', 'walk CPU ms', 'slices', 'longest slice µs (CPU)', 'then'], walks) + '\n');
  } finally {
    await session.close();
    await nginx.stop();
  }
}
