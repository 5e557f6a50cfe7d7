// The pollers' spin in flight (issue 15), opt-in with NFFI_FLIGHT_SPIN_US: while many calls are
// in flight, a poller that finds the queue empty waits for the worker's next batch spinning
// instead of asleep, but only from another CPU than the worker's, and it backs off when its
// spin loses the CPU. What this machine offers decides what is asserted: with two CPUs and the
// eventfd path, a worker and its pollers placed apart (taskset, as the scheduler often places
// them) spin when asked to, and the stats count every spin as found or lost; without the
// variable, or with the worker pinned to one CPU (worker_cpu_affinity), nothing spins. Every
// result stays byte-exact either way.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useNginx } from './harness/nginx.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { FAST_BUILT, WAKE_HTTP, getJson } from './harness/wake-app.js';

/** CPUs this process may run on (what the worker inherits from the master). */
function allowedCpus(pid: number | 'self'): number[] {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '0';
  return list.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
  });
}

function pin(tid: number, cpu: number): void {
  execFileSync('taskset', ['-p', '-c', String(cpu), String(tid)], { stdio: 'ignore' });
}

const BURST = '/run?conc=32&n=300&max=4096';

const SPIN_ENV = { NFFI_FLIGHT_SPIN_US: '50' };

/** The burst with the worker's main thread on one CPU and its other threads on another. */
async function burstApart(nginx: () => { url(p: string): string; workerPids(): number[] }, cpus: number[]): Promise<any> {
  // the runtime and its 4 pollers start with the first call
  await getJson(nginx().url('/run?conc=1&n=1&max=10'));
  const pid = nginx().workerPids()[0]!;
  if (cpus.length >= 2) {
    for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) pin(tid, tid === pid ? cpus[0]! : cpus[1]!);
  }
  const doc = await getJson(nginx().url(BURST));
  expect(doc.calls).toBe(9600);
  expect(doc.failures + doc.mismatches).toBe(0);
  expect(doc.runtimes.auto.live).toBe(0);
  return doc.runtimes.auto;
}

describe('spin in flight asked for, worker and pollers apart', () => {
  const nginx = useNginx({ workers: 1, http: WAKE_HTTP, luaPath: [FIXTURE_LUA], env: SPIN_ENV });
  const cpus = allowedCpus('self');
  const canSpin = FAST_BUILT && cpus.length >= 2;

  it(canSpin ? 'spins from the other CPU, each spin counted as found or lost'
    : 'never spins (one CPU, or no eventfd path on this machine)', async () => {
    const rt = await burstApart(nginx, cpus);
    expect(rt.spins_in_flight).toEqual(expect.any(Number));
    expect(rt.spins_lost).toEqual(expect.any(Number));
    // a poller on the other CPU waits for the next batch spinning; a spin either finds it or
    // loses its CPU (then the pollers sleep for their next 63 chances)
    if (canSpin) expect(rt.spins_in_flight + rt.spins_lost).toBeGreaterThan(0);
    else expect(rt.spins_in_flight + rt.spins_lost).toBe(0);
  });
});

describe('spin in flight by default, worker and pollers apart', () => {
  const nginx = useNginx({ workers: 1, http: WAKE_HTTP, luaPath: [FIXTURE_LUA] });

  it('never spins: it is off unless NFFI_FLIGHT_SPIN_US asks for it', async () => {
    const rt = await burstApart(nginx, allowedCpus('self'));
    expect(rt.spins_in_flight).toBe(0);
    expect(rt.spins_lost).toBe(0);
  });
});

describe('spin in flight asked for, worker pinned to one CPU', () => {
  const nginx = useNginx({ workers: 1, main: 'worker_cpu_affinity 01;', http: WAKE_HTTP, luaPath: [FIXTURE_LUA], env: SPIN_ENV });

  it('never spins: a spinner would only take the time of the worker it waits for', async () => {
    const doc = await getJson(nginx().url(BURST));
    expect(doc.calls).toBe(9600);
    expect(doc.failures + doc.mismatches).toBe(0);
    expect(allowedCpus(nginx().workerPids()[0]!)).toEqual([0]);
    const rt = doc.runtimes.auto;
    expect(rt.spins_in_flight).toBe(0);
    expect(rt.spins_lost).toBe(0);
  });
});
