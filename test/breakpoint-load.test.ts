// Arming and removing breakpoints every 100 ms for 60 s under wrk load: traffic never
// notices (zero failed requests), every arm is undone, and hits keep flowing.
import { describe, expect, it } from 'vitest';
import { wrk } from '../bench/wrk.js';
import { Breakpoints } from '../probe/breakpoints.js';
import { Session } from '../probe/session.js';
import { BP_CLI_FILE, BP_CLI_HTTP, BREAK_LINE, FIXTURE_LUA } from './harness/bp-cli-app.js';
import { useNginx } from './harness/nginx.js';

const SECONDS = 60;
const PERIOD_MS = 100;

describe('breakpoints under load', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  it(`arm/remove every ${PERIOD_MS} ms for ${SECONDS} s while wrk runs: zero failures`, async () => {
    const session = await Session.open(nginx().masterPid);
    const bps = new Breakpoints(session);
    let hits = 0;
    bps.onEvent((e) => { if (e.event === 'hit') hits++; });
    try {
      const pids = nginx().workerPids().sort();
      const load = wrk(nginx().url('/work?n=3&user=bob'), { seconds: SECONDS, connections: 16 });
      const until = Date.now() + (SECONDS - 2) * 1000;
      let cycles = 0;
      for (let i = 0; Date.now() < until; i++) {
        const cond = i % 2 ? 'n > 2' : 'user == "bob"';
        const { id } = await bps.set({ url: BP_CLI_FILE, line: BREAK_LINE, condition: cond, rate: 20 });
        await new Promise((r) => setTimeout(r, PERIOD_MS));
        await bps.remove(id);
        cycles++;
      }
      const res = await load;
      // a worker that died would show as a new pid (and its in-flight requests as errors)
      expect(nginx().workerPids().sort()).toEqual(pids);
      expect(res.errors, res.errorDetail).toBe(0);
      expect(res.requests).toBeGreaterThan(10_000);
      expect(cycles).toBeGreaterThan(SECONDS * 3);
      expect(hits).toBeGreaterThan(0);
      const left = await session.callAll('Debugger.getBreakpoints', {});
      expect(left.map((w) => (w.result as { breakpoints: unknown[] }).breakpoints)).toEqual([[], []]);
    } finally {
      await session.close();
    }
  }, (SECONDS + 30) * 1000);
});
