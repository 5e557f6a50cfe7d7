// What `stack` says about a coroutine, against real nginx (1 worker) running
// test/fixtures/lua/names_app.lua: ids never reused within a worker's lifetime (lua-nginx-module
// reuses finished threads), a coroutine that has gone, frame names a reader would use, honest
// locals, proxies and hidden library upvalues.
import { request, type ClientRequest } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { oneLineError, runCli } from './harness/cli.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const NAMES_HTTP = `
init_worker_by_lua_block { require("nffi.inspect").start() }
server {
    listen 127.0.0.1:$PORT;
    location / { content_by_lua_block { require("names_app").route() } }
}
`;

const nginx = useNginx({ workers: 1, http: NAMES_HTTP, luaPath: [FIXTURE_LUA], env: { PARK_HOLD_S: '20' } });

const held: ClientRequest[] = [];
afterAll(() => {
  for (const r of held) r.destroy();
});

/** Starts a parked request; resolves once its headers arrive (the coroutine is parked then). */
function park(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(nginx().url(path), { agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('error', () => undefined);
      resolve();
    });
    req.on('error', reject);
    req.end();
    held.push(req);
  });
}

const worker = () => nginx().workerPids()[0]!;

interface Co { id: number; kind: string; state: string; request: { uri: string } | null; frames: { function: string; source: string; line: number }[] }

async function coroutines(): Promise<Co[]> {
  const r = await runCli(['coroutines', String(worker()), '--json', '--all', '--frames', '8']);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).workers[0].coroutines;
}

/** The id of the coroutine serving `uri`, once it is parked. */
async function idOf(uri: string): Promise<number> {
  const co = await waitFor(async () => (await coroutines()).find((c) => c.request?.uri === uri && c.state === 'suspended'),
    { timeout: 8_000, interval: 100, what: `a coroutine serving ${uri}` });
  return co.id;
}

describe('coroutine ids', () => {
  it('are never reused across coroutine churn, and a finished one says so', async () => {
    const seen = new Map<number, string>();
    for (let round = 0; round < 3; round++) {
      const uri = `/names/slow?s=3&round=${round}`;
      await park(uri);
      const id = await idOf(uri);
      expect(seen.has(id), `id ${id} named ${seen.get(id)} before ${uri}`).toBe(false);
      seen.set(id, uri);
      // finished threads go back to lua-nginx-module's cache and serve the next requests
      await waitFor(async () => !(await coroutines()).some((c) => c.id === id && c.state !== 'dead'),
        { timeout: 5_000, interval: 200, what: `coroutine ${id} to finish` });
      await Promise.all(Array.from({ length: 20 }, () => http(nginx().url('/names/churn'))));
      const r = await runCli(['stack', String(worker()), String(id)]);
      expect(r.status).toBe(1);
      expect(oneLineError(r)).toBe(`nffi-inspect: coroutine ${id} of worker ${worker()} has finished`);
      expect(r.stdout).toBe('');
    }
    const ids = [...seen.keys()];
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it('an id never given is not "finished", and no error names a protocol method', async () => {
    const r = await runCli(['stack', String(worker()), '999999']);
    expect(r.status).toBe(1);
    const line = oneLineError(r);
    expect(line).toMatch(/no coroutine 999999 in worker \d+/);
    expect(line).not.toMatch(/Lua\.|getStack|getCoroutines/);
  });
});
