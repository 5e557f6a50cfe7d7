// One configuration of `npm run bench -- tui` (bench/tui.ts): the real attach app (tui/app.ts
// startAttach, in this process, with its in-process probe) on a terminal of a given size,
// attached to the real nginx of bench/tui-world.ts; with `flood`, wrk on the TUI-HIT route and a
// breakpoint on that line typed into the app's `:` command line. Then a key every KEY_EVERY_MS
// for the window, and what the app counted (stats()), its store and its samples say.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { startAttach, type AttachApp, type AttachStats } from '../tui/app.js';
import { SEQ, TEST_ENV } from '../tui/testing.js';
import { benchTty, hitLine, startLoad, TUI_FILE, type Load } from './tui-world.js';

export const KEY_EVERY_MS = 300;
/** Tab to the next pane, then move in it: every key changes what the screen shows. */
const KEYS = ['tab', 'j', 'j', 'k'];

export interface Config { cols: number; rows: number; flood: boolean }

export interface Measured {
  config: Config;
  windowMs: number;
  /** This process's CPU (user + system) over the window, % of one core. */
  cpuPct: number;
  /** The part of it spent in the bench's own key loop (sending keys, reading stats()), ms. */
  driverMs: number;
  /** Per key: arrival in the app → end of the draw that showed it (the app's lastKeyMs). */
  appKeyMs: number[];
  /** Per key: when the bench meant to send it → end of that draw (adds the wait of a busy loop). */
  e2eKeyMs: number[];
  /** Keys not drawn before the next one was due (counted as > KEY_EVERY_MS). */
  undrawn: number;
  /** stats().maxKeyMs at the end, over the session (includes the typed command line). */
  appMaxKeyMs: number;
  s0: AttachStats;
  s1: AttachStats;
  bytesPerS: number;
  /** As the app's store counted them: hit events of the bench's breakpoint in the window. */
  hits: number;
  hitWorkers: number;
  armedWorkers: number;
  bpId?: number;
  /** As the agents reported in the app's last sample. */
  attached: number;
  sampledWorkers: number;
  pendingTotal: number;
  depth: number;
  inFlight: number;
  heapMb: [number, number];
  /** The event loop over the window: how late a 10 ms timer ran (max, p99, ms), and GC pauses. */
  loop: { maxMs: number; p99Ms: number; gcMs: number; gcMaxMs: number };
  /** All CPUs of the machine over the window: busy, % of all; and % of one core: nginx, wrk, and
   * what ran besides them and this process (another job on the machine). */
  machine: { busyPct: number; nginxPct: number; wrkPct: number; othersPct: number };
  wrk?: { requests: number; rps: number; errors: number };
  /** Why a figure does not stand for what it names (printed, and the suite exits 1). */
  problems: string[];
}

/** Jiffies of all CPUs: busy and in all (/proc/stat's first line). */
function machineJiffies(): { busy: number; all: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const all = f.slice(0, 8).reduce((a, n) => a + n, 0);
  return { busy: all - f[3]! - f[4]!, all };
}

/** utime + stime of a process, in clock ticks (0 when it is gone). */
function procJiffies(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** The CPU of the machine's parts over a window, in clock ticks: all CPUs busy, this process,
 * nginx (master and workers), wrk; the rest is everything else running on the machine. */
function cpuParts(nginx: number[], wrk: number | undefined) {
  const m = machineJiffies();
  return {
    busy: m.busy, all: m.all, self: procJiffies(process.pid),
    nginx: nginx.reduce((n, pid) => n + procJiffies(pid), 0), wrk: wrk === undefined ? 0 : procJiffies(wrk),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ms: number, ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`tui bench: ${what} within ${ms} ms`);
    await sleep(50);
  }
}

/** The bottom rows of the screen (the status line says why a command failed). */
const bottom = (app: AttachApp) => app.term.frame().split('\n').slice(-2).join(' | ').replace(/\s+/g, ' ').trim();

/** Type `:breakpoint …` into the app and wait until every worker has armed it. */
async function armBreakpoint(app: AttachApp, tty: ReturnType<typeof benchTty>, workers: number): Promise<number> {
  const cmd = `breakpoint ${TUI_FILE}:${hitLine()} --rate 5000/s --count 1000000000 --timeout 10m`;
  // one read per key, as typed (tui/testing.ts typeKeys, on this terminal)
  for (const k of [':', ...cmd.split(''), 'enter']) {
    tty.input.write(SEQ[k] ?? k);
    await sleep(0);
  }
  try {
    await until('the typed breakpoint was not set', 10_000, () => app.screen.mine.size > 0);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the screen's last lines: ${bottom(app)}`);
  }
  const id = [...app.screen.mine][0]!;
  await until(`breakpoint ${id} was not armed on ${workers} workers`, 10_000, () => {
    const bp = app.store!.hits.state.breakpoints.find((b) => b.id === id);
    return (bp?.workers.filter((w) => w.state === 'armed').length ?? 0) >= workers;
  });
  return id;
}

export interface MeasureOptions {
  masterPid: number;
  /** nginx's processes now (master and workers), for the machine's account. */
  nginxPids: () => number[];
  workers: number;
  tasks: number;
  hitUrl: string;
  connections: number;
  windowMs: number;
  warmMs: number;
}

export async function measure(config: Config, o: MeasureOptions): Promise<Measured> {
  const tty = benchTty(config.cols, config.rows);
  const app = await startAttach({
    pid: o.masterPid, input: tty.input, output: tty.output, env: TEST_ENV, processHooks: false, refreshMs: 500,
  });
  let load: Load | undefined;
  const problems: string[] = [];
  try {
    await until(`the app took no 2 samples of ${o.workers} workers`, 15_000, () => {
      const snap = app.sampler?.history.latest;
      return app.stats().samples >= 2 && (snap?.tasks.length ?? 0) >= o.workers;
    });
    let bpId: number | undefined;
    if (config.flood) {
      load = startLoad(o.hitUrl, o.connections);
      bpId = await armBreakpoint(app, tty, o.workers);
    }
    await sleep(o.warmMs);

    let arrived: number | undefined;
    const offKey = app.term.onKey(() => (arrived ??= performance.now()));
    const appKeyMs: number[] = [];
    const e2eKeyMs: number[] = [];
    let undrawn = 0;
    let driverMs = 0;
    const bpHits = () => app.store!.hits.state.breakpoints.find((b) => b.id === bpId)?.hits ?? 0;

    const delay = monitorEventLoopDelay({ resolution: 10 });
    const gc = { ms: 0, max: 0 };
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        gc.ms += e.duration;
        gc.max = Math.max(gc.max, e.duration);
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    delay.enable();
    const s0 = app.stats();
    const hits0 = bpHits();
    const heap0 = process.memoryUsage().heapUsed;
    const bytes0 = tty.bytes();
    // nginx's pids come from a scan of /proc, which is the bench's work, not the app's: done
    // before the window opens (and the second read after it closes)
    const pids = o.nginxPids();
    const parts0 = cpuParts(pids, load?.pid);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let prev = { keys: s0.keys, last: s0.lastKeyMs };
    let sent: number | undefined;
    const collect = () => {
      const d0 = performance.now();
      const s = app.stats();
      if (sent !== undefined) {
        if (s.keys === prev.keys + 1 && s.lastKeyMs !== undefined && s.lastKeyMs !== prev.last && arrived !== undefined) {
          appKeyMs.push(s.lastKeyMs);
          e2eKeyMs.push(arrived - sent + s.lastKeyMs);
        } else {
          undrawn++;
          appKeyMs.push(Infinity);
          e2eKeyMs.push(Infinity);
        }
      }
      prev = { keys: s.keys, last: s.lastKeyMs };
      driverMs += performance.now() - d0;
    };
    for (let i = 0; i * KEY_EVERY_MS < o.windowMs; i++) {
      const due = t0 + i * KEY_EVERY_MS;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      collect();
      const d0 = performance.now();
      arrived = undefined;
      sent = due;
      const k = KEYS[i % KEYS.length]!;
      tty.input.write(SEQ[k] ?? k);
      driverMs += performance.now() - d0;
    }
    const end = t0 + o.windowMs;
    if (end > performance.now()) await sleep(end - performance.now());
    collect();
    const cpu = process.cpuUsage(cpu0);
    const windowMs = performance.now() - t0;
    const parts1 = cpuParts(pids, load?.pid);
    const d = (k: keyof typeof parts0) => parts1[k] - parts0[k];
    // clock ticks of one core in the window (all CPUs' ticks / CPUs)
    const oneCore = Math.max(1, d('all') / cpus().length);
    const machine = {
      busyPct: (d('busy') / Math.max(1, d('all'))) * 100, nginxPct: (d('nginx') / oneCore) * 100, wrkPct: (d('wrk') / oneCore) * 100,
      othersPct: (Math.max(0, d('busy') - d('self') - d('nginx') - d('wrk')) / oneCore) * 100,
    };
    const s1 = app.stats();
    const hits = bpHits() - hits0;
    const heap1 = process.memoryUsage().heapUsed;
    delay.disable();
    gcObserver.disconnect();
    const loop = { maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, gcMs: gc.ms, gcMaxMs: gc.max };
    offKey();

    // what was measured: 8 workers attached and sampled, the tasks pending as the agents say,
    // the breakpoint armed everywhere and its hits at the rate named
    const attached = (await app.client!.targets()).filter((t) => t.attached).length;
    const snap = app.sampler!.history.latest!;
    const sampledWorkers = (snap.queue?.workers ?? []).filter((w) => !w.error && w.runtimes.some((r) => r.name === 'pend')).length;
    const pend = (snap.queue?.workers ?? []).flatMap((w) => w.runtimes.filter((r) => r.name === 'pend'));
    const depth = pend.reduce((n, r) => n + r.depth, 0);
    const inFlight = pend.reduce((n, r) => n + r.in_flight, 0);
    const pendingTotal = snap.tasks.reduce((n, w) => n + w.total, 0);
    const bp = app.store!.hits.state.breakpoints.find((b) => b.id === bpId);
    const armedWorkers = bp?.workers.filter((w) => w.state === 'armed').length ?? 0;
    const hitWorkers = bp?.workers.filter((w) => w.hits > 0).length ?? 0;
    const name = `${config.cols}×${config.rows} ${config.flood ? 'flood' : 'idle'}`;
    if (attached !== o.workers) problems.push(`${name}: ${attached} workers attached, not ${o.workers}`);
    if (sampledWorkers !== o.workers) problems.push(`${name}: the last sample has the pend runtime of ${sampledWorkers} workers, not ${o.workers}`);
    // every waiting task is pending; the gate task of each filled worker is in flight besides
    if (depth < o.tasks || pendingTotal < o.tasks) {
      problems.push(`${name}: the agents report ${pendingTotal} tasks (queue depth ${depth}), not the ${o.tasks} pending`);
    }
    if (s1.samples - s0.samples < 1) problems.push(`${name}: no sample in the window`);
    if (s1.sampleErrors > s0.sampleErrors) problems.push(`${name}: ${s1.sampleErrors - s0.sampleErrors} samples failed: ${bottom(app)}`);
    const perS = (hits * 1000) / windowMs;
    if (config.flood) {
      if (armedWorkers !== o.workers) problems.push(`${name}: breakpoint ${bpId} armed on ${armedWorkers} workers, not ${o.workers}`);
      if (perS < 800) problems.push(`${name}: the app counted ${perS.toFixed(0)} hits/s, under 800/s`);
      if (hitWorkers !== o.workers) problems.push(`${name}: hits came from ${hitWorkers} workers, not ${o.workers}`);
    } else if (s1.events !== s0.events) {
      problems.push(`${name}: ${s1.events - s0.events} breakpoint events with no breakpoint set`);
    }
    const wrk = load ? await load.stop() : undefined;
    load = undefined;
    if (wrk && !(wrk.requests > 0)) problems.push(`${name}: wrk did not run: ${wrk.text.trim().slice(0, 300)}`);
    return {
      config, windowMs, cpuPct: ((cpu.user + cpu.system) / 1000 / windowMs) * 100, driverMs,
      appKeyMs, e2eKeyMs, undrawn, appMaxKeyMs: s1.maxKeyMs, s0, s1,
      bytesPerS: ((tty.bytes() - bytes0) * 1000) / windowMs,
      hits, hitWorkers, armedWorkers, ...(bpId !== undefined && { bpId }),
      attached, sampledWorkers, pendingTotal, depth, inFlight, heapMb: [heap0 / 1e6, heap1 / 1e6], loop, machine,
      ...(wrk && { wrk }), problems,
    };
  } finally {
    await load?.stop();
    await app.quit();
  }
}
