// The nginx lines that mount bench/lua/pending_app.lua (N tasks pending in one worker,
// a ticker measuring event-loop stalls) with the agent: `npm run bench -- tasks` and
// test/tasks-scale.test.ts.
import { request } from 'node:http';
import { join } from 'node:path';
import { repoRoot } from '../probe/repo-root.js';

/** Runs as source under vitest and compiled from dist/: found from the checkout's root. */
export const PENDING_LUA = join(repoRoot(), 'bench', 'lua');

export const PENDING_APP_HTTP = `
lua_shared_dict pending 1m;
init_worker_by_lua_block { require("nffi.inspect").start() }

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("pending_app").route() }
    }
}
`;

export interface PendingState {
  pid: number;
  n: number;
  spawned: number;
  done: number;
  failed: number;
  rss_kb: number;
  stall_max_ms: number;
  stall_max_cpu_ms: number;
  stall_ticks: number;
  /** gaps that held 2-3, 3-5, 5-10, 10-20, >= 20 ms of CPU, space-separated */
  stall_cpu_hist: string;
}

export interface GcSteps { pid: number; max_ms: number; steps: number; over1: number; over2: number }

/** One GET on a fresh connection (so that requests spread over the workers). */
export function get(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, pid: Number(res.headers['x-pid'] ?? 0) }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${url}: no response within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function getJson<T>(url: string): Promise<T> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pending app of one nginx instance, by its base URL. */
export class PendingApp {
  constructor(private readonly url: (path: string) => string) {}

  state(): Promise<PendingState> {
    return getJson<PendingState>(this.url('/state'));
  }

  /** Fills one worker with n pending tasks; resolves once all are enqueued. */
  async fill(n: number, timeoutMs = 60_000): Promise<{ pid: number; ms: number; rssKb: number }> {
    const t0 = Date.now();
    const { pid, error } = await getJson<{ pid: number; error?: string }>(this.url(`/fill?n=${n}`));
    if (error) throw new Error(error);
    for (;;) {
      const s = await this.state();
      if (s.spawned >= n && s.rss_kb > 0) return { pid, ms: Date.now() - t0, rssKb: s.rss_kb };
      if (Date.now() - t0 > timeoutMs) throw new Error(`fill: ${s.spawned}/${n} tasks after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** A new stall window; resolves once the ticker has seen it. */
  async resetStall(): Promise<void> {
    await get(this.url('/stall/reset'));
    await sleep(20);
  }

  /** Opens the gate; resolves with the time until every task has answered. */
  async drain(n: number, timeoutMs = 60_000): Promise<{ ms: number; done: number; failed: number }> {
    const t0 = Date.now();
    await get(this.url('/open'));
    for (;;) {
      const s = await this.state();
      if (s.done + s.failed >= n) return { ms: Date.now() - t0, done: s.done, failed: s.failed };
      if (Date.now() - t0 > timeoutMs) throw new Error(`drain: ${s.done}/${n} done after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** The VM's own GC steps in worker `pid` (asks until that worker answers). */
  async gcSteps(pid: number, tries = 60): Promise<GcSteps | undefined> {
    for (let i = 0; i < tries; i++) {
      const g = await getJson<GcSteps>(this.url('/gcstep'));
      if (g.pid === pid) return g;
    }
    return undefined;
  }

  /** /ping on fresh connections every intervalMs until stop() resolves; their results. */
  pinger(intervalMs = 5): { stop: () => Promise<{ status: number; pid: number; ms: number }[]> } {
    const results: { status: number; pid: number; ms: number }[] = [];
    let done = false;
    const loop = (async () => {
      while (!done) {
        const t0 = Date.now();
        const r = await get(this.url('/ping')).catch(() => ({ status: 0, pid: 0 }));
        results.push({ status: r.status, pid: r.pid, ms: Date.now() - t0 });
        await sleep(intervalMs);
      }
    })();
    return {
      stop: async () => {
        done = true;
        await loop;
        return results;
      },
    };
  }
}
