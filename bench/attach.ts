// The agent's cost while nobody is attached (req/s with the dormant agent vs none,
// side by side in one run) and how long an attach takes.
import { readFileSync } from 'node:fs';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';
import { wrk } from './wrk.js';
import { measureAttach } from './attach-latency.js';

const ROUNDS = 7;
const SECONDS = 3;
const IDLE_SECONDS = 10;

// A small handler with some Lua work, so per-request costs show.
const HANDLER = `
location = /work {
    content_by_lua_block {
        local t = {}
        for i = 1, 50 do t[i] = i * 2 end
        ngx.say(#t)
    }
}`;

const AGENT_INIT = 'init_worker_by_lua_block { require("nffi.inspect").start() }';
// The floor of any design that polls: an empty 100 ms timer.
const BARE_TIMER_INIT = 'init_worker_by_lua_block { ngx.timer.every(0.1, function() end) }';

function http(init: string): string {
  return `
${init}
server {
    listen 127.0.0.1:$PORT;
    ${HANDLER}
}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// CPU time the worker thread has used, in ns (/proc/PID/schedstat, first field).
function cpuNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

// The worker's own CPU use while idle: what the dormant agent's poll costs, exactly,
// free of the load generator's noise.
async function idleCpu(insts: NginxInstance[]): Promise<number[]> {
  const pids = insts.map((i) => i.workerPids()[0]!);
  const before = pids.map(cpuNs);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  return pids.map((p, i) => (cpuNs(p) - before[i]!) / IDLE_SECONDS / 1000);
}

async function dormantCost(): Promise<string[][]> {
  const opts = { workers: 1, main: 'worker_cpu_affinity 01;' };
  const none = await startNginx({ ...opts, http: http('') });
  const dormant = await startNginx({ ...opts, http: http(AGENT_INIT) });
  const bare = await startNginx({ ...opts, http: http(BARE_TIMER_INIT) });
  try {
    const [idleNone, idleDormant, idleBare] = await idleCpu([none, dormant, bare]);
    await bare.stop();
    const rps: Record<string, number[]> = { none: [], dormant: [] };
    let errors = 0;
    // alternate so drift hits both alike; wrk runs on the other core
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, inst] of [['none', none], ['dormant', dormant]] as [string, NginxInstance][]) {
        const res = await wrk(inst.url('/work'), { seconds: SECONDS, connections: 32, cpu: 1 });
        rps[name]!.push(res.rps);
        errors += res.errors;
      }
    }
    const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
    const a = median(rps.none!), b = median(rps.dormant!);
    return [
      ['no agent', a.toFixed(0), spread(rps.none!), '', idleNone!.toFixed(1)],
      ['dormant agent', b.toFixed(0), spread(rps.dormant!), `${((1 - b / a) * 100).toFixed(2)}%`,
        idleDormant!.toFixed(1)],
      ['empty 100 ms timer', '', '', '', idleBare!.toFixed(1)],
      ['dormant cost', '', '', '', `${(idleDormant! - idleNone!).toFixed(1)} µs/s = `
        + `${((idleDormant! - idleNone!) / 1e4).toFixed(3)}% of a core`],
      ['wrk errors', String(errors), '', '', ''],
    ];
  } finally {
    await none.stop();
    await dormant.stop();
    await bare.stop();
  }
}

export async function runAttachBench(): Promise<void> {
  const rows = await dormantCost();
  process.stdout.write(`\n== dormant agent: req/s, median of ${ROUNDS} wrk runs of ${SECONDS} s (1 worker pinned to `
    + `CPU 0, wrk on CPU 1, 32 connections), and the worker's CPU while idle for ${IDLE_SECONDS} s\n`);
  process.stdout.write(formatTable(['setup', 'req/s', 'range', 'loss', 'idle CPU µs/s'], rows) + '\n');
  const lat = await measureAttach();
  process.stdout.write(`\n== attach latency: ${lat.samples} attaches to a live worker\n`);
  process.stdout.write(formatTable(['p50 ms', 'max ms'], [[lat.p50.toFixed(1), lat.max.toFixed(1)]]) + '\n');
}
