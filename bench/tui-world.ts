// What `npm run bench -- tui` (bench/tui.ts) runs the attach screen against: a real nginx
// with 8 workers and the agent, bench/lua/tui_bench.lua filling each worker's slow runtime
// with pending tasks at start, wrk on the route whose TUI-HIT line the breakpoint targets,
// and a terminal that is a TTY to blessed but keeps nothing of what is drawn (it counts bytes).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { repoRoot } from '../probe/repo-root.js';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { get } from './pending-app.js';

export const TUI_LUA = join(repoRoot(), 'bench', 'lua');
export const TUI_FILE = 'tui_bench.lua';

export function hitLine(): number {
  const n = readFileSync(join(TUI_LUA, TUI_FILE), 'utf8').split('\n').findIndex((l) => l.includes('-- TUI-HIT')) + 1;
  if (n < 1) throw new Error(`no TUI-HIT marker in ${TUI_FILE}`);
  return n;
}

function http(perWorker: number, oneWorker: boolean): string {
  return `
lua_shared_dict tui_bench 1m;
init_worker_by_lua_block {
    require("nffi.inspect").start()
    require("tui_bench").init(${perWorker}, ${oneWorker})
}
server {
    listen 127.0.0.1:$PORT reuseport;
    location / {
        content_by_lua_block { require("tui_bench").route() }
    }
}
`;
}

export interface FillState { pid: number; want: number; spawned: number }

export interface World {
  nginx: NginxInstance;
  /** Tasks pending per worker, by pid, once all are enqueued. */
  fill: FillState[];
  fillMs: number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * nginx with `workers` workers, `tasks` tasks pending: spread evenly over the workers, or all in
 * worker 0 (`oneWorker`). Resolves once every worker has enqueued its share.
 */
export async function startWorld(workers: number, tasks: number, oneWorker: boolean): Promise<World> {
  if (!oneWorker && tasks % workers !== 0) throw new Error(`${tasks} tasks do not spread evenly over ${workers} workers`);
  const perWorker = oneWorker ? tasks : tasks / workers;
  const t0 = Date.now();
  const nginx = await startNginx({ workers, http: http(perWorker, oneWorker), luaPath: [TUI_LUA] });
  try {
    for (;;) {
      const r = await get(nginx.url('/state'));
      const fill = JSON.parse(r.body) as FillState[];
      if (fill.length === workers && fill.every((f) => f.spawned >= f.want)) {
        return { nginx, fill, fillMs: Date.now() - t0, stop: () => nginx.stop() };
      }
      if (Date.now() - t0 > 60_000) throw new Error(`fill: ${JSON.stringify(fill)} after 60 s`);
      await sleep(100);
    }
  } catch (err) {
    await nginx.stop();
    throw err;
  }
}

export interface Load {
  readonly pid: number | undefined;
  /** Stop wrk (SIGINT: it prints its summary) and read it. */
  stop(): Promise<{ requests: number; rps: number; errors: number; text: string }>;
}

/** wrk on `url` with `connections` connections until stop(); each request sleeps in nginx, so
 * the rate is about connections / sleep and wrk's own CPU stays small. */
export function startLoad(url: string, connections: number): Load {
  const child: ChildProcess = spawn('wrk', ['-t1', `-c${connections}`, '-d600s', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => resolve());
    child.on('error', (err) => {
      out += `spawn wrk: ${err.message}\n`;
      resolve();
    });
  });
  return {
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const late = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(late);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = non2xx + (socket ? socket.slice(1).reduce((a, n) => a + Number(n), 0) : 0);
      return { requests, rps, errors, text: out };
    },
  };
}

/** A terminal for the app: a TTY to blessed (raw mode, a size, resize), its input written by the
 * bench, its output counted and dropped (a terminal emulator would take it; nothing piles up). */
export interface BenchTty {
  input: PassThrough & { isTTY: boolean; isRaw: boolean; setRawMode(raw: boolean): void };
  output: PassThrough & { isTTY: boolean; columns: number; rows: number };
  bytes(): number;
  writes(): number;
}

export function benchTty(cols: number, rows: number): BenchTty {
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    setRawMode(raw: boolean) { input.isRaw = raw; },
  });
  const output = Object.assign(new PassThrough(), { isTTY: true, columns: cols, rows });
  let bytes = 0;
  let writes = 0;
  const write = output.write.bind(output) as (chunk: unknown, ...rest: unknown[]) => boolean;
  output.write = ((chunk: unknown, ...rest: unknown[]) => {
    writes++;
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).length;
    return write(chunk, ...rest);
  }) as typeof output.write;
  output.resume();
  return { input, output, bytes: () => bytes, writes: () => writes };
}
