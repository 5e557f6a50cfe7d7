// `npm run bench -- resty-ffi`: the measurement lua-resty-ffi's README makes
// (its examples/go nginx.conf, /ffi_benchmark): N sequential echo calls per
// payload size from one nginx worker, through nffi to a Go runtime
// (native/examples/go, libnffi_go_echo.so) and through a cosocket to a Go
// unix-socket echo server (nffi_go_uds), in one run. Calls are timed inside
// the worker (bench/lua/bench_resty_ffi.lua); every reply must be byte-exact.
//
// BENCH_RESTY_FFI_N=100000 (lua-resty-ffi's count) sets N; BENCH_RESTY_FFI_SIZES=16,1024
// the sizes.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatTable } from '../cli/format/table.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH_LUA = join(ROOT, 'bench', 'lua');
const EXAMPLES = join(ROOT, 'native', 'build', 'examples');
const GO_UDS = join(EXAMPLES, 'nffi_go_uds');
const GO_LIB = join(EXAMPLES, 'libnffi_go_echo.so');

interface Run { way: string; size: number; calls: number; good: number; warm: number; warm_good: number; seconds: number }

function envInts(name: string, dflt: number[]): number[] {
  const v = process.env[name];
  if (!v) return dflt;
  const out = v.split(',').map((x) => Number(x));
  if (out.some((x) => !Number.isInteger(x) || x <= 0)) throw new Error(`${name}=${v}: want positive integers, comma-separated`);
  return out;
}

const N = envInts('BENCH_RESTY_FFI_N', [100_000])[0]!;
const SIZES = envInts('BENCH_RESTY_FFI_SIZES', [16, 1024, 100 * 1024]);
const WARM = Math.min(N, 1000);

const HTTP = `
server {
    listen 127.0.0.1:$PORT;
    location = /bench { content_by_lua_block { require("bench_resty_ffi").run() } }
}`;

async function startGoUds(dir: string): Promise<ChildProcess> {
  const path = join(dir, 'echo.sock');
  const proc = spawn(GO_UDS, [path], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 250 && !existsSync(path) && proc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(path)) throw new Error(`${GO_UDS} did not start (exit ${proc.exitCode})`);
  return proc;
}

async function runWay(nginx: NginxInstance, way: string, size: number, uds: string): Promise<Run> {
  const res = await fetch(nginx.url(`/bench?way=${way}&size=${size}&n=${N}&warm=${WARM}&uds=${encodeURIComponent(uds)}`));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${way} ${size} B: HTTP ${res.status} ${text.slice(0, 300)}\n${nginx.errorLogTail(10)}`);
  const run = JSON.parse(text) as Run;
  // a wrong or missing reply is a broken run, never a fast one
  if (run.calls !== N || run.good !== N || run.warm_good !== WARM) {
    throw new Error(`${way} ${size} B: ${run.good}/${run.calls} calls (and ${run.warm_good}/${run.warm} warm-up calls) ` +
      `answered with their exact payload, want ${N}/${N}`);
  }
  return run;
}

export async function runRestyFfiBench(): Promise<void> {
  for (const f of [GO_LIB, GO_UDS]) if (!existsSync(f)) throw new Error(`${f} is missing: run make -C native`);
  const dir = mkdtempSync(join(tmpdir(), 'nffi-bench-'));
  chmodSync(dir, 0o755); // the worker runs as nobody and must reach the socket
  const uds = await startGoUds(dir);
  const nginx = await startNginx({ workers: 1, luaPath: [BENCH_LUA], http: HTTP });
  try {
    const rows: string[][] = [];
    for (const size of SIZES) {
      const ffi = await runWay(nginx, 'nffi', size, join(dir, 'echo.sock'));
      const sock = await runWay(nginx, 'uds', size, join(dir, 'echo.sock'));
      rows.push([String(size), String(N), ffi.seconds.toFixed(3), sock.seconds.toFixed(3),
        (N / ffi.seconds).toFixed(0), (N / sock.seconds).toFixed(0), `${(sock.seconds / ffi.seconds).toFixed(2)}×`]);
    }
    process.stdout.write(`\n== lua-resty-ffi's benchmark: ${N} sequential echo calls per size, one worker, ` +
      'nffi + Go runtime vs cosocket + Go unix-socket server; every reply byte-exact\n');
    process.stdout.write(formatTable(['bytes', 'calls', 'nffi s', 'unix socket s', 'nffi calls/s', 'uds calls/s',
      'unix socket takes X× as long as nffi'], rows) + '\n');
  } finally {
    await nginx.stop();
    uds.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
