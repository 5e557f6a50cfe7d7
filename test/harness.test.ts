// The nginx launcher itself: real nginx, real workers, reload and stop.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { procUid } from '../scripts/nginx/procs.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const isRoot = process.getuid?.() === 0;

// reuseport: the kernel spreads new connections over the workers, so both answer.
const nginx = useNginx({
  workers: 2,
  http: `
    server {
      listen 127.0.0.1:$PORT reuseport;
      location /hello {
        content_by_lua_block { ngx.say("hello from ", ngx.worker.pid()) }
      }
    }`,
});

async function hello(): Promise<number> {
  const r = await http(nginx().url('/hello'));
  expect(r.status).toBe(200);
  const m = /^hello from (\d+)\n$/.exec(r.body.toString());
  expect(m, r.body.toString()).not.toBeNull();
  return Number(m![1]);
}

/** Request until every current worker has answered; returns the pids that answered. */
async function allWorkersAnswer(): Promise<number[]> {
  const expected = nginx().workerPids();
  const seen = new Set<number>();
  await waitFor(
    async () => {
      seen.add(await hello());
      return expected.every((p) => seen.has(p));
    },
    { what: `answers from workers ${expected.join(', ')}`, interval: 10 },
  );
  return [...seen].sort((a, b) => a - b);
}

describe('nginx harness', () => {
  it('serves /hello from a worker', async () => {
    expect(nginx().workerPids()).toContain(await hello());
  });

  it('has two workers, and both answer', async () => {
    const pids = nginx().workerPids();
    expect(pids).toHaveLength(2);
    expect(await allWorkersAnswer()).toEqual(pids);
  });

  it.runIf(isRoot)('runs workers as nobody when started by root', () => {
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    for (const pid of nginx().workerPids()) expect(procUid(pid)).toBe(nobody);
    expect(procUid(nginx().masterPid)).toBe(0);
  });

  it('reload() replaces both workers and keeps serving', async () => {
    const before = nginx().workerPids();
    await nginx().reload();
    const after = nginx().workerPids();
    expect(after).toHaveLength(2);
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    expect(await allWorkersAnswer()).toEqual(after);
  });

  it('stop() leaves no process and no prefix behind', async () => {
    const { masterPid, prefix } = nginx();
    const pids = [masterPid, ...nginx().workerPids()];
    await nginx().stop();
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false);
    if (!process.env.NFFI_KEEP_PREFIX) expect(existsSync(prefix)).toBe(false);
    expect(nginx().errorLog()).toMatch(/start worker process/);
    await nginx().stop(); // idempotent
  });
});
