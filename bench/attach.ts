// The agent's cost while nobody is attached (req/s with the dormant agent vs none,
// side by side in one run) and how long an attach takes.
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';
import { wrk } from './wrk.js';
import { measureAttach } from './attach-latency.js';

const ROUNDS = 5;
const SECONDS = 3;

// A small handler with some Lua work, so per-request costs show.
const HANDLER = `
location = /work {
    content_by_lua_block {
        local t = {}
        for i = 1, 50 do t[i] = i * 2 end
        ngx.say(#t)
    }
}`;

function http(withAgent: boolean): string {
  return `
${withAgent ? 'init_worker_by_lua_block { require("nffi.inspect").start() }' : ''}
server {
    listen 127.0.0.1:$PORT;
    ${HANDLER}
}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function dormantCost(): Promise<string[][]> {
  const opts = { workers: 1, main: 'worker_cpu_affinity 01;' };
  const none = await startNginx({ ...opts, http: http(false) });
  const dormant = await startNginx({ ...opts, http: http(true) });
  try {
    const rps: Record<string, number[]> = { none: [], dormant: [] };
    let errors = 0;
    // alternate so drift hits both alike
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, inst] of [['none', none], ['dormant', dormant]] as [string, NginxInstance][]) {
        const res = await wrk(inst.url('/work'), { seconds: SECONDS, connections: 32 });
        rps[name]!.push(res.rps);
        errors += res.errors;
      }
    }
    const a = median(rps.none!), b = median(rps.dormant!);
    return [
      ['no agent', a.toFixed(0), ''],
      ['dormant agent', b.toFixed(0), `${((1 - b / a) * 100).toFixed(2)}% loss`],
      ['errors', String(errors), ''],
    ];
  } finally {
    await none.stop();
    await dormant.stop();
  }
}

export async function runAttachBench(): Promise<void> {
  const rows = await dormantCost();
  process.stdout.write(`\n== dormant agent: req/s, median of ${ROUNDS} wrk runs of ${SECONDS} s (1 worker, pinned, 32 connections)\n`);
  process.stdout.write(formatTable(['setup', 'req/s', 'vs none'], rows) + '\n');
  const lat = await measureAttach();
  process.stdout.write(`\n== attach latency: ${lat.samples} attaches to a live worker\n`);
  process.stdout.write(formatTable(['p50 ms', 'max ms'], [[lat.p50.toFixed(1), lat.max.toFixed(1)]]) + '\n');
}
