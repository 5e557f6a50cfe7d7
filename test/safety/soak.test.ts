// The soak of issue 11's proof: wrk load on 2 workers that call the nffi runtimes, while a driver
// attaches and detaches every 5 s (the probe's in-process Session; between two sessions one run
// of the real CLI: coroutines, tasks or queue), arms and removes a breakpoint every 100 ms (plain,
// conditional, logpoint, task ffi:echo.echo / ffi:slow.wait) and walks coroutines, stacks, tasks
// and runtimes without pause. Then: zero failed requests, zero worker crashes (same pids, no
// alert/crit/signal line), each worker's RSS within 5 MB of what it was after the warm-up, the FFI
// queues drained to 0 live tasks, nothing armed (a fresh attach sees no breakpoint and no hook)
// and nothing left in the run dir. NFFI_SOAK_SECONDS sets the length: 60 in `npm test`, 600 in
// `npm run test:safety`. One summary line starts with `[safety] soak`.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { wrk } from '../../bench/wrk.js';
import { Breakpoints } from '../../probe/breakpoints.js';
import type { Debugger } from '../../probe/protocol-types.js';
import { Session } from '../../probe/session.js';
import { runCli } from '../harness/cli.js';
import { useNginx } from '../harness/nginx.js';
import {
  agentSlices, crashLines, FIXTURE_LUA, freshAttach, lag, NOTHING_ARMED, outstanding, rssKb, runDirEntries, SOAK_FILE, SOAK_HTTP,
  SOAK_LINE, workerStates,
} from './app.js';

const SECONDS = Number(process.env.NFFI_SOAK_SECONDS ?? 60);
if (!(SECONDS >= 20)) throw new Error(`NFFI_SOAK_SECONDS=${process.env.NFFI_SOAK_SECONDS}: at least 20`);
/** Load with no session at all first (the worker's stall without inspection), then warm-up. */
const QUIET_S = 4;
const WARMUP_S = Math.max(12, Math.round(SECONDS * 0.15));
const CYCLE_MS = 5_000;
const ARM_MS = 100;
const RSS_LIMIT_KB = 5 * 1024;

const TMP = mkdtempSync(join(tmpdir(), 'nffi-soak-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

type Kind = 'plain' | 'conditional' | 'logpoint' | 'task';
const KINDS: Kind[] = ['plain', 'conditional', 'logpoint', 'task'];

function specOf(kind: Kind, i: number): Debugger.BreakpointSpec {
  const at = { url: SOAK_FILE, line: SOAK_LINE, rate: 20 };
  switch (kind) {
    case 'plain': return at;
    case 'conditional': return { ...at, condition: i % 2 ? 'n > 5 and user == "bob"' : '#body > 3 and ngx.var.arg_user == "bob"' };
    case 'logpoint': return { ...at, log: 'n={n} user={user} body={body} uri={ngx.var.uri}' };
    case 'task': return i % 2 ? { url: 'ffi:echo.echo', condition: '#req > 3', rate: 20 } : { url: 'ffi:slow.wait', rate: 20 };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number): string => (kb / 1024).toFixed(2);

describe('soak', () => {
  const nginx = useNginx({ workers: 2, http: SOAK_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN_DIR } });

  it(`${SECONDS} s of wrk while a driver attaches/detaches every 5 s, arms/removes every 100 ms and walks: nothing fails, leaks or stays armed`, async () => {
    const master = nginx().masterPid;
    const pids = nginx().workerPids().sort((a, b) => a - b);
    const logFrom = nginx().errorLog().length;
    // In `npm test` the soak shares 2 cores with files that time things: nginx, this process and
    // what it starts (wrk, the CLI) take the CPU the others leave. Alone (test:safety), no change.
    execFileSync('renice', ['-n', '10', '-p', String(process.pid), String(master), ...pids.map(String)], { stdio: 'ignore' });
    const t0 = Date.now();
    const elapsed = (): number => (Date.now() - t0) / 1000;

    await lag(nginx, true);
    const load = wrk(nginx().url('/soak?n=20&user=bob'), { seconds: SECONDS, connections: 16 });
    await sleep(QUIET_S * 1000);
    const quiet = await lag(nginx, true);

    const n = { cycles: 0, cli: 0, arms: 0, walks: 0, stacks: 0, stacksGone: 0, stackRaces: 0, tasksSeen: 0, waitingOnFfi: 0 };
    const hits: Record<Kind, number> = { plain: 0, conditional: 0, logpoint: 0, task: 0 };
    const failures: string[] = [];
    const fail = (what: string, err: unknown): void => void (failures.length < 20 && failures.push(`${what}: ${(err as Error)?.message ?? String(err)}`));
    const leftovers: string[] = [];
    const rss = new Map<number, number[]>(pids.map((p) => [p, []]));
    let baseline: Map<number, number> | undefined;
    let warmLag: boolean = false;
    let armIndex = 0;
    const stopAt = t0 + (SECONDS - 3) * 1000;

    while (Date.now() < stopAt) {
      const cycleEnd = Math.min(Date.now() + CYCLE_MS, stopAt);
      let session: Session;
      try {
        session = await Session.open(master, { runDir: RUN_DIR });
      } catch (err) {
        fail(`attach at ${elapsed().toFixed(1)} s`, err);
        await sleep(500);
        continue;
      }
      n.cycles++;
      const bps = new Breakpoints(session);
      const kindOf = new Map<number, Kind>();
      bps.onEvent((e) => {
        if (e.event === 'hit') hits[kindOf.get(e.id) ?? 'plain']++;
        if (e.event === 'error') fail(`bp ${e.id} (${kindOf.get(e.id)}) error event`, JSON.stringify(e));
      });
      let walking = true;
      const walker = (async () => {
        while (walking) {
          const cos = await session.callAll('Lua.getCoroutines', { frames: 3 });
          const tasks = await session.callAll('FFI.getTasks', { max: 100 });
          const rts = await session.callAll('FFI.getRuntimes', {});
          n.walks++;
          for (const r of [...cos, ...tasks, ...rts]) if (r.error) fail(`walk of worker ${r.pid}`, r.error);
          for (const t of tasks) n.tasksSeen += t.result?.tasks.length ?? 0;
          for (const w of cos) {
            const list = w.result?.coroutines ?? [];
            const ffi = list.filter((c) => c.wait?.kind === 'ffi');
            n.waitingOnFfi += ffi.length;
            const pick = ffi[0] ?? list.find((c) => c.kind === 'request') ?? list[0];
            if (!pick) continue;
            try {
              await session.call(w.pid, 'Lua.getStack', { coroutine: pick.id, locals: true });
              n.stacks++;
            } catch (err) {
              // it may have ended between the walk and this request
              const msg = (err as Error).message;
              // gone since the walk: the agent says so in words (issue 14) or, for an id it never
              // gave, as unknown
              if (/unknown coroutine|has finished/.test(msg)) n.stacksGone++;
              // the coroutine ran on while its locals were read across a yield: the agent says
              // so (it once raised 'level out of range'); counted and printed
              else if (/ran on while its stack was read/.test(msg)) n.stackRaces++;
              else fail(`stack of ${w.pid}/${pick.id}`, err);
            }
          }
        }
      })().catch((err) => fail('walker', err));
      try {
        while (Date.now() < cycleEnd - ARM_MS) {
          const kind = KINDS[armIndex % KINDS.length]!;
          const spec = specOf(kind, Math.floor(armIndex / KINDS.length));
          armIndex++;
          try {
            const { id, workers } = await bps.set(spec);
            kindOf.set(id, kind);
            n.arms++;
            const armed = workers.filter((w) => w.state === 'armed' || w.state === 'pending').length;
            if (armed !== pids.length) fail(`bp ${id} (${kind}) set on ${armed} of ${pids.length} workers`, JSON.stringify(workers));
            await sleep(ARM_MS);
            await bps.remove(id);
          } catch (err) {
            fail(`arm/remove ${kind}`, err);
          }
        }
      } finally {
        walking = false;
        await walker;
        await bps.clear().catch((err: unknown) => fail('clear', err));
        await session.close();
      }
      const left = runDirEntries(RUN_DIR);
      if (left.length) leftovers.push(`after session ${n.cycles}: ${left.join(' ')}`);

      // one run of the real CLI between two sessions
      const cmd = (['coroutines', 'tasks', 'queue'] as const)[n.cycles % 3]!;
      const r = await runCli([cmd, String(master), '--json', '--run-dir', RUN_DIR], { timeout: 30_000 });
      n.cli++;
      if (r.status !== 0) fail(`${cmd} --json`, `exit ${r.status}: ${r.stderr.trim()}`);
      else {
        try {
          const doc = JSON.parse(r.stdout);
          if (!Array.isArray(doc.workers) || doc.workers.length !== pids.length) fail(`${cmd} --json`, r.stdout.slice(0, 300));
        } catch (err) {
          fail(`${cmd} --json output`, err);
        }
      }
      const leftCli = runDirEntries(RUN_DIR);
      if (leftCli.length) leftovers.push(`after ${cmd}: ${leftCli.join(' ')}`);

      for (const p of pids) {
        try {
          rss.get(p)!.push(rssKb(p));
        } catch (err) {
          fail(`RSS of ${p}`, err);
        }
      }
      if (!baseline && elapsed() >= QUIET_S + WARMUP_S) {
        baseline = new Map(pids.map((p) => [p, rss.get(p)!.at(-1)!]));
        await lag(nginx, true);
        warmLag = true;
      }
      const wait = cycleEnd - Date.now();
      if (wait > 0) await sleep(wait);
    }

    const inspected = warmLag ? await lag(nginx) : [];
    const res = await load;
    const final = new Map(pids.map((p) => [p, rssKb(p)]));
    const lastSample = new Map(pids.map((p) => [p, rss.get(p)!.at(-1) ?? final.get(p)!]));

    // the queues drain once the load is over: nothing leaked
    let states = await workerStates(nginx, pids);
    const drainBy = Date.now() + 5_000;
    while (outstanding(states) > 0 && Date.now() < drainBy) {
      await sleep(200);
      states = await workerStates(nginx, pids);
    }
    const slices = await agentSlices(master, RUN_DIR);
    const armedAfter = await freshAttach(master, RUN_DIR);
    const leftAfter = runDirEntries(RUN_DIR);
    states = await workerStates(nginx, pids);

    const growth = pids.map((p) => (lastSample.get(p)! - (baseline?.get(p) ?? lastSample.get(p)!)));
    const worst = (ls: { cpu_ms: number; wall_ms: number }[]): string =>
      ls.length ? `${Math.max(...ls.map((l) => l.cpu_ms)).toFixed(1)} ms CPU / ${Math.max(...ls.map((l) => l.wall_ms)).toFixed(1)} ms wall` : 'n/a';
    const summary = {
      seconds: SECONDS, requests: res.requests, rps: Math.round(res.rps), errors: res.errors,
      cycles: n.cycles, cli_runs: n.cli, arms: n.arms, hits, walks: n.walks, stacks: n.stacks,
      tasks_seen: n.tasksSeen, waiting_on_ffi: n.waitingOnFfi,
      rss_mb: pids.map((p, i) => `${p}: ${mb(baseline?.get(p) ?? 0)} -> ${mb(lastSample.get(p)!)} (${growth[i]! >= 0 ? '+' : ''}${mb(growth[i]!)}, max ${mb(Math.max(...rss.get(p)!))})`),
      stall_quiet: worst(quiet), stall_inspected: worst(inspected), failures: failures.length,
      stack_races: n.stackRaces, stacks_gone: n.stacksGone, agent_slices: slices,
    };
    console.log(`[safety] soak ${SECONDS} s: ${res.requests} requests (${summary.rps}/s), ${res.errors} failed; `
      + `${n.cycles} sessions, ${n.cli} CLI runs, ${n.arms} arms (hits: plain ${hits.plain}, conditional ${hits.conditional}, `
      + `logpoint ${hits.logpoint}, task ${hits.task}), ${n.walks} walks, ${n.stacks} stacks, ${n.tasksSeen} tasks seen; `
      + `RSS growth after warm-up ${growth.map((g) => `${mb(g)} MB`).join(', ')}; `
      + `worst event-loop stall ${summary.stall_inspected} inspected (${summary.stall_quiet} with no session), `
      + `the agent's longest slice ${Math.max(...slices.map((x) => x.max_slice_cpu_ms)).toFixed(2)} ms CPU; `
      + `${n.stackRaces} stacks refused as the coroutine ran on meanwhile; `
      + `driver failures ${failures.length}`);
    console.log(`[safety] soak detail ${JSON.stringify(summary)}`);

    expect(failures, 'what the driver saw fail').toEqual([]);
    expect(res.errors, res.errorDetail).toBe(0);
    expect(res.requests).toBeGreaterThan(SECONDS * 200);
    expect(nginx().workerPids().sort((a, b) => a - b), 'worker pids (a crash would show as a new pid)').toEqual(pids);
    expect(crashLines(nginx().errorLog().slice(logFrom))).toEqual([]);
    expect(baseline, `a baseline after ${QUIET_S + WARMUP_S} s`).toBeDefined();
    for (const [i, p] of pids.entries()) expect(growth[i], `worker ${p} RSS growth after warm-up (kB)`).toBeLessThan(RSS_LIMIT_KB);
    expect(outstanding(states), `live, queued and in-flight tasks after the load: ${JSON.stringify([...states.values()].map((s) => s.runtimes))}`).toBe(0);
    for (const s of states.values()) expect({ hook: s.hook, task_hook: s.task_hook, gc_running: s.gc_running }).toEqual({ hook: false, task_hook: false, gc_running: true });
    expect(armedAfter).toEqual(pids.map((pid) => ({ pid, ...NOTHING_ARMED })));
    expect(leftovers, 'run dir entries after a session or a CLI run').toEqual([]);
    expect(leftAfter, 'run dir entries after the last detach').toEqual([]);
    expect(n.cycles).toBeGreaterThanOrEqual(Math.floor((SECONDS - QUIET_S) / 10));
    // the driver asks every 100 ms; each arm waits for its answer, and under the whole suite at
    // nice 10 an arm (a walk of loaded code in 0.75 ms slices) took ~2 s: 32 in 60 s once
    expect(n.arms).toBeGreaterThan(SECONDS / 4);
    for (const k of KINDS) expect(hits[k], `hits of ${k} breakpoints`).toBeGreaterThan(0);
    expect(n.walks).toBeGreaterThan(0);
  }, (SECONDS + 120) * 1000);
});
