// `npm run bench -- tasks`: `queue` and `tasks` against 100,000 tasks pending in one worker
// (bench/lua/pending_app.lua), and the longest stall of that worker's event loop while they
// run, as a 1 ms ticker inside the worker sees it: the longest gap between its wake-ups in
// wall time (includes the OS running other processes: this is a 2-core VM) and in CPU time
// of the worker thread (work that held the loop, whoever did it). The VM's own GC steps in
// the same worker, with no agent work, are measured too: with 100,000 live coroutines they
// are the floor no agent slicing can go under.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { formatTable } from '../cli/format/table.js';
import { repoRoot } from '../probe/repo-root.js';
import { Session } from '../probe/session.js';
import { startNginx } from '../scripts/nginx-instance.js';
import { PendingApp, PENDING_APP_HTTP, PENDING_LUA, type PendingState } from './pending-app.js';

const N = 100_000;
const RUNS = 3;
const IDLE_MS = 3000;

interface Run { ms: number; bytes: number; status: number | null; stall: PendingState }
interface MethodStats { requests: number; slices: number; yields: number; max_slice_ms: number; max_slice_cpu_ms: number }

/** The CLI as users run it; stdout is counted, not kept (--all prints ~80 MB). */
function cli(args: string[]): Promise<{ ms: number; bytes: number; status: number | null; stderr: string }> {
  const bin = join(repoRoot(), 'bin', 'nffi-inspect.js');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (bytes += b.length));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ ms: performance.now() - t0, bytes, status, stderr }));
  });
}

async function methodStats(pid: number): Promise<Record<string, MethodStats>> {
  const s = await Session.open(pid);
  try {
    return (await s.call(pid, 'Agent.getStats')).methods as Record<string, MethodStats>;
  } finally {
    await s.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (bytes: number) => bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(0)} kB`;

/** "2-3/3-5/5-10/10-20/>=20 ms" counts, summed over runs */
function hist(runs: PendingState[]): string {
  const sum = [0, 0, 0, 0, 0];
  for (const r of runs) String(r.stall_cpu_hist || '0 0 0 0 0').split(' ').forEach((n, i) => (sum[i]! += Number(n)));
  return sum.join('/');
}

function row(name: string, st: PendingState[], runs: Run[], extra: string): string[] {
  return [
    name,
    runs.length ? median(runs.map((r) => r.ms)).toFixed(0) : '',
    runs.length ? mb(median(runs.map((r) => r.bytes))) : '',
    Math.max(...st.map((s) => s.stall_max_ms)).toFixed(1),
    Math.max(...st.map((s) => s.stall_max_cpu_ms)).toFixed(2),
    hist(st),
    String(st.reduce((a, s) => a + s.stall_ticks, 0)),
    extra,
  ];
}

export async function runTasksBench(): Promise<void> {
  const nginx = await startNginx({ workers: 2, http: PENDING_APP_HTTP, luaPath: [PENDING_LUA] });
  try {
    const app = new PendingApp((p) => nginx.url(p));
    const fill = await app.fill(N);
    const pid = fill.pid;
    process.stdout.write(`\n== ${N} tasks pending in one worker (${fill.ms} ms to enqueue; worker RSS `
      + `${(fill.rssKb / 1024).toFixed(0)} MB): command time, and the longest gap of a 1 ms ticker in that worker\n`);

    const gc = await app.gcSteps(pid);
    await app.resetStall();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idle = await app.state();

    const commands: [string, string[]][] = [
      ['queue', ['queue', String(pid), '--json']],
      ['tasks (1000 listed)', ['tasks', String(pid), '--json']],
      ['tasks --max 10000', ['tasks', String(pid), '--max', '10000', '--json']],
      ['tasks --all', ['tasks', String(pid), '--all', '--json']],
    ];
    const rows: string[][] = [row(`no command, ${IDLE_MS / 1000} s`, [idle], [], '')];
    let stats = await methodStats(pid);
    for (const [name, args] of commands) {
      const runs: Run[] = [];
      const before = stats;
      for (let i = 0; i < RUNS; i++) {
        await app.resetStall();
        const r = await cli(args);
        if (r.status !== 0) throw new Error(`nffi-inspect ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
        runs.push({ ...r, stall: await app.state() });
      }
      stats = await methodStats(pid);
      const method = name === 'queue' ? 'FFI.getRuntimes' : 'FFI.getTasks';
      const a = stats[method]!;
      const b = before[method] ?? { requests: 0, slices: 0, yields: 0 };
      const per = (k: 'requests' | 'slices' | 'yields') => ((a[k] - b[k]) / RUNS).toFixed(0);
      rows.push(row(name, runs.map((r) => r.stall), runs, `${per('requests')} / ${per('slices')} / ${per('yields')}`));
    }
    process.stdout.write(formatTable(
      ['command', 'ms', 'output', 'gap ms', 'gap CPU ms', 'gaps >=2 ms CPU', 'ticks', 'agent requests/slices/yields'],
      rows) + '\n');
    process.stdout.write(`(median of ${RUNS} runs; gap columns: the longest over all runs; gaps >=2 ms CPU: how many `
      + 'held 2-3/3-5/5-10/10-20/>=20 ms; agent columns: per run)\n');
    const agent = Object.entries(stats).filter(([m]) => m.startsWith('FFI.'))
      .map(([m, s]) => `${m} ${s.max_slice_cpu_ms.toFixed(2)} ms CPU (${s.max_slice_ms.toFixed(2)} ms wall)`);
    process.stdout.write(`longest agent slice over all runs: ${agent.join(', ')}\n`);
    if (gc) {
      process.stdout.write(`the VM's own GC in that worker, no agent work (one full cycle of single steps): longest `
        + `step ${gc.max_ms.toFixed(1)} ms CPU; of ${gc.steps} steps, ${gc.over1} took >= 1 ms, ${gc.over2} >= 2 ms\n`);
    }
    const drain = await app.drain(N);
    process.stdout.write(`gate opened: ${drain.done} tasks answered in ${drain.ms} ms (${drain.failed} failed)\n`);
  } finally {
    await nginx.stop();
  }
}
