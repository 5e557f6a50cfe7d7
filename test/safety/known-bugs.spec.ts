// Product bugs the safety proof found, each as the test that passes once it is fixed (all six
// are now; the tests stay, docs/safety.md says by which change). Not in `npm test`
// (vitest.config.ts includes *.test.ts only); `npm run test:safety` runs them and its summary lists each
// as open or fixed. docs/safety.md says what each one breaks.
//   1. Lua.getStack with locals raises "level out of range" when the coroutine runs on while
//      its frames are read across the walk's yield (lua/nffi/inspect/capture.lua get_stack).
//   2. Arming a line breakpoint holds a JIT-warm worker's event loop for tens of ms: the trace
//      scan behind it (lua/nffi/inspect/jitctl.lua flush_covering) is one unbroken step.
//   3. `breakpoint MASTER` goes on silently, armed nowhere, after its workers detach (nginx -s
//      quit, or the probe stopped past the heartbeat): no line, no exit until its timeout.
//   4. A worker that dies while the probe attaches is reported as having no agent, with the
//      nginx.conf lines to add.
//   5. A task breakpoint's hits vanish (counted, neither sent nor counted as dropped) when the
//      runtime's method is a light thread's entry function: ngx.thread.spawn(rt.wait, rt, req).
//   6. After `nginx -s reload` with nffi calls in flight, an old worker often never exits: the
//      pump drains the last waiters and then blocks in its read for good (lua/nffi/pump.lua).
//      No agent involved: test/fixtures/lua/ffi_app.lua, as test/ffi-reload.test.ts uses it.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { wrk } from '../../bench/wrk.js';
import { Breakpoints } from '../../probe/breakpoints.js';
import { Session } from '../../probe/session.js';
import { runCli, startCli, stopCliAfterEach, type RunningCli } from '../harness/cli.js';
import { FFI_APP_HTTP } from '../harness/ffi-app.js';
import { http, useNginx, waitFor, type NginxHandle } from '../harness/nginx.js';
import { FAULTS_HTTP, FIXTURE_LUA, SOAK_FILE, SOAK_HTTP, SOAK_LINE } from './app.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-known-bugs-'));
chmodSync(TMP, 0o755);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
stopCliAfterEach();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const armedEvents = (cli: RunningCli): any[] => cli.lines().filter((e) => e.event === 'armed');

async function breakpointCli(nginx: NginxHandle, run: string): Promise<RunningCli> {
  for (let i = 0; i < 10; i++) await http(nginx().url('/soak?n=3'));
  const cli = startCli(['breakpoint', String(nginx().masterPid), `${SOAK_FILE}:${SOAK_LINE}`, '--json', '--run-dir', run]);
  const n = nginx().workerPids().length;
  await waitFor(() => armedEvents(cli).length >= n, { timeout: 15_000, what: `armed on ${n} workers; out: ${cli.out()} err: ${cli.err()}` });
  return cli;
}

describe('one worker', () => {
  const RUN = join(TMP, 'run1');
  const nginx = useNginx({ workers: 1, http: FAULTS_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN } });

  it('1. Lua.getStack --locals on a coroutine that moves while it is read: an answer or a clear error, never "level out of range"', async () => {
    const churn = http(nginx().url('/churn?s=4'), { timeout: 15_000 });
    const session = await Session.open(nginx().masterPid, { runDir: RUN });
    const errors = new Map<string, number>();
    let answers = 0;
    try {
      const pid = session.targets()[0]!.pid;
      const co = await waitFor(async () => (await session.call(pid, 'Lua.getCoroutines', { frames: 50 })).coroutines
        .find((c) => c.frames.some((f) => f.function === 'dive')), { timeout: 3_000, what: 'the coroutine in dive()' });
      const until = Date.now() + 3_000;
      while (Date.now() < until) {
        try {
          await session.call(pid, 'Lua.getStack', { coroutine: co.id, locals: true, keys: 1000 });
          answers++;
        } catch (err) {
          const m = (err as Error).message.replace(/^Lua\.getStack in worker \d+: /, '').replace(/\d+/g, 'N');
          errors.set(m, (errors.get(m) ?? 0) + 1);
        }
      }
    } finally {
      await session.close();
      await churn;
    }
    console.log(`[safety] known bug 1: ${answers} stacks read, errors: ${JSON.stringify(Object.fromEntries(errors))}`);
    expect([...errors.keys()].filter((m) => /level out of range|bad argument|\.lua:N:/.test(m))).toEqual([]);
  }, 30_000);

  it('2. arming a line breakpoint on a JIT-warm worker under load holds its event loop at most ~2 ms at a time', async () => {
    // sessions come and go as in the soak: each end turns JIT back on, the load compiles new
    // traces, the next arm scans them all (on this 2-core VM: 500-1200 traces, up to ~90 ms)
    const load = wrk(nginx().url('/soak?n=20&user=bob'), { seconds: 16, connections: 16 });
    await sleep(2_000);
    const scans: number[] = [];
    let worst = 0;
    try {
      for (let s = 0; s < 3; s++) {
        const session = await Session.open(nginx().masterPid, { runDir: RUN });
        try {
          const bps = new Breakpoints(session);
          const pid = session.targets()[0]!.pid;
          for (let i = 0; i < 5; i++) {
            const { id } = await bps.set({ url: SOAK_FILE, line: SOAK_LINE, rate: 10 });
            const st = await session.call(pid, 'Agent.getStats', {}) as any;
            scans.push(st.breakpoints.jit.scan_us / 1000);
            worst = st.methods['Debugger.setBreakpoint'].max_slice_cpu_ms;
            await sleep(150);
            await bps.remove(id);
            await sleep(150);
          }
        } finally {
          await session.close();
        }
        await sleep(1_500);
      }
    } finally {
      await load;
    }
    console.log(`[safety] known bug 2: trace scans per arm ${scans.map((s) => s.toFixed(1)).join(', ')} ms; `
      + `longest setBreakpoint slice ${worst.toFixed(1)} ms CPU`);
    // 3 ms as for the hostile frames: the agent's 0.75 ms slice, a GC step, the timer's own work
    expect(worst, 'longest stretch of Debugger.setBreakpoint holding the event loop (CPU ms)').toBeLessThan(3);
  }, 40_000);

  it('5. a task breakpoint on a call made as a light thread\'s entry function (spawn(rt.wait, rt, req)) sends its hits', async () => {
    await http(nginx().url('/spawned?direct=0'));
    const session = await Session.open(nginx().masterPid, { runDir: RUN });
    const bps = new Breakpoints(session);
    const hits: any[] = [];
    bps.onEvent((e) => { if (e.event === 'hit') hits.push(e); });
    let counted: any;
    try {
      const { id } = await bps.set({ url: 'ffi:spawned.*', rate: 1000 });
      // a function of ours around the call: both hits arrive
      await http(nginx().url('/spawned?direct=0'));
      await waitFor(() => hits.length === 2, { timeout: 3_000, what: 'the 2 hits of a wrapped call' });
      // the method itself as the thread's entry function
      await http(nginx().url('/spawned?direct=1'));
      await sleep(1_000);
      counted = (await session.callAll('Debugger.getBreakpoints', {}))[0]!.result!.breakpoints.find((b) => b.id === id);
    } finally {
      await bps.clear();
      await session.close();
    }
    console.log(`[safety] known bug 5: the agent counted ${counted.hits} hits (${counted.dropped} dropped), the probe got ${hits.length}`);
    expect({ hits: hits.length, phases: hits.map((h) => h.task?.phase) }).toEqual({ hits: 4, phases: ['enqueue', 'resume', 'enqueue', 'resume'] });
  });
});

describe('two workers', () => {
  const RUN = join(TMP, 'run2');
  const nginx = useNginx({ workers: 2, http: SOAK_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN } });

  it('3b. breakpoint MASTER stopped past the heartbeat, then continued: it says its workers let go (or arms again), it does not go on silently', async () => {
    const cli = await breakpointCli(nginx, RUN);
    const log0 = nginx().errorLog().length;
    cli.child.kill('SIGSTOP');
    await waitFor(() => (nginx().errorLog().slice(log0).match(/detached reason=heartbeat timeout/g) ?? []).length === 2,
      { timeout: 10_000, interval: 100, what: 'both agents to give up on the stopped probe' });
    cli.child.kill('SIGCONT');
    await sleep(5_000);
    const rearmed = armedEvents(cli).length > 2;
    const said = cli.err().trim();
    console.log(`[safety] known bug 3b: 5 s after SIGCONT: stderr ${JSON.stringify(said)}, armed again: ${rearmed}, still running: ${cli.child.exitCode === null}`);
    expect(rearmed || said !== '', 'a line about the workers that let go, or the breakpoint armed again').toBe(true);
  }, 30_000);

  it('4. a worker that dies while the probe attaches is said to have exited, not to lack the agent', async () => {
    const [victim] = nginx().workerPids();
    process.kill(victim!, 'SIGSTOP');
    const run = runCli(['coroutines', String(victim), '--run-dir', RUN]);
    await waitFor(() => existsSync(RUN) && readdirSync(RUN).includes(`${victim}.attach`), { timeout: 5_000, what: `${victim}.attach` });
    process.kill(victim!, 'SIGKILL');
    const r = await run;
    console.log(`[safety] known bug 4: ${r.stderr.trim().slice(0, 120)}…`);
    expect(r.stderr).not.toMatch(/no agent|nginx\.conf/);
    expect(r.stderr).toMatch(new RegExp(`worker ${victim} (exited|died|is gone|no longer exists)`));
  });
});

describe('nginx -s quit', () => {
  const RUN = join(TMP, 'run3');
  const nginx = useNginx({ workers: 2, http: SOAK_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN } });

  it('3a. breakpoint MASTER when nginx quits: it says so and exits, it does not wait silently for its timeout', async () => {
    const cli = await breakpointCli(nginx, RUN);
    process.kill(nginx().masterPid, 'SIGQUIT');
    let code: number | null | 'running' = 'running';
    void cli.exited.then((c) => (code = c));
    await sleep(5_000);
    console.log(`[safety] known bug 3a: 5 s after SIGQUIT: exit ${code}, stderr ${JSON.stringify(cli.err().trim())}`);
    expect(code, 'breakpoint MASTER still running 5 s after nginx quit').not.toBe('running');
    expect(cli.err()).toMatch(/nginx|master|exited|detached/);
  }, 30_000);
});


describe('nginx -s reload under nffi load (no agent)', () => {
  const nginx = useNginx({ workers: 2, http: FFI_APP_HTTP, luaPath: [FIXTURE_LUA] });
  const exited = (pid: number): boolean => {
    try {
      return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return true;
    }
  };

  it('6. every old worker exits within 5 s of a reload made while 8 clients call the echo runtime', async () => {
    const stuck: number[] = [];
    for (let round = 0; round < 5; round++) {
      let stop = false;
      const loops = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) await http(nginx().url(`/many?rt=echo&n=20&id=${w}-${i}`)).catch(() => undefined);
      });
      await sleep(300);
      const before = nginx().workerPids();
      await nginx().reload();
      const t0 = Date.now();
      while (!before.every(exited) && Date.now() - t0 < 5_000) await sleep(100);
      stop = true;
      await Promise.all(loops);
      stuck.push(...before.filter((p) => !exited(p)));
    }
    const log = nginx().errorLog();
    console.log(`[safety] known bug 6: ${stuck.length} of 10 old workers still there 5 s after their reload: `
      + stuck.map((p) => `${p} (${log.includes(`${p}#${p}: exiting`) ? 'exiting' : 'shutting down, no "exiting" line'})`).join(', '));
    expect(stuck, 'old workers still running 5 s after their reload').toEqual([]);
  }, 90_000);
});
