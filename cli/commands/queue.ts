// `nffi-inspect queue PID [--watch] [--interval S] [--json]`: the nffi runtimes of each worker.
// --watch keeps the session (a master's new workers join after a reload) and prints a table
// per interval, or one NDJSON line per interval with --json, until Ctrl-C.
import type { Command } from 'commander';
import type { FFI } from '../../probe/protocol-types.js';
import type { Session } from '../../probe/session.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { termText, writeTerm } from '../format/escape.js';
import { formatQueue, type Latency, type WorkerStats } from '../format/queue.js';
import { list, parsePid, printJson, withProbeOptions, withSession, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  watch?: boolean;
  interval?: string;
}

const PHASES = ['queue', 'service', 'wakeup', 'total'] as const;

function latency(raw: unknown): Latency {
  const l = (raw ?? {}) as Partial<Latency>;
  return { p50: l.p50 ?? 0, p99: l.p99 ?? 0, max: l.max ?? 0, count: l.count ?? 0 };
}

function stats(r: FFI.RuntimeStats): WorkerStats['runtimes'][number] {
  const lat = r.latency_ms ?? {};
  return {
    name: r.name, depth: r.depth, in_flight: r.in_flight, enqueued: r.enqueued, completed: r.completed,
    timeouts: r.timeouts, rejected: r.rejected,
    latency_ms: {
      queue: latency(lat.queue), service: latency(lat.service), wakeup: latency(lat.wakeup), total: latency(lat.total),
    },
  };
}

interface QueueWorker { pid: number; runtimes: ReturnType<typeof jsonRuntime>[]; error?: string }

function jsonRuntime(r: WorkerStats['runtimes'][number]) {
  const lat = Object.fromEntries(PHASES.map((p) => [p, { p50: r.latency_ms[p].p50, p99: r.latency_ms[p].p99 }]));
  return {
    name: r.name, depth: r.depth, in_flight: r.in_flight, enqueued: r.enqueued, completed: r.completed,
    timeouts: r.timeouts, rejected: r.rejected, latency_ms: lat,
  };
}

async function snapshot(s: Session): Promise<{ table: WorkerStats[]; json: QueueWorker[]; errors: string[] }> {
  const results = await s.callAll('FFI.getRuntimes');
  const table = results.map((r) => ({ pid: r.pid, runtimes: list<FFI.RuntimeStats>(r.result?.runtimes).map(stats) }));
  const json = table.map((w, i) => ({
    pid: w.pid,
    runtimes: w.runtimes.map(jsonRuntime),
    ...(results[i]!.error ? { error: results[i]!.error } : {}),
  }));
  const errors = results.filter((r) => r.error).map((r) => `worker ${r.pid}: ${r.error}`);
  return { table, json, errors };
}

function print(snap: Awaited<ReturnType<typeof snapshot>>, opts: Options, watching: boolean): void {
  if (opts.json) return printJson({ workers: snap.json }, !watching);
  const clear = watching && process.stdout.isTTY ? '\x1b[H\x1b[2J' : '';
  const stamp = watching ? `${new Date().toISOString()}\n` : '';
  const sep = watching && !clear ? '\n' : '';
  // the screen clear is ours; everything after it is escaped for the terminal
  process.stdout.write(clear);
  writeTerm(stamp + [formatQueue(snap.table), ...snap.errors.map((e) => termText(e))].join('\n') + '\n' + sep);
}

/** Resolves on Ctrl-C (or SIGTERM); the session then detaches normally. */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

async function watch(s: Session, opts: Options, intervalMs: number): Promise<void> {
  let stop = false;
  const stopped = interrupted().then(() => { stop = true; });
  while (!stop) {
    print(await snapshot(s), opts, true);
    await Promise.race([stopped, new Promise((r) => setTimeout(r, intervalMs))]);
  }
}

export function registerQueue(program: Command): void {
  withProbeOptions(program
    .command('queue')
    .description('show the nffi runtimes of the workers: depth, in flight, counters, p50/p99 latencies')
    .argument('<PID>', 'nginx master (all workers) or worker pid')
    .option('--watch', 'refresh until Ctrl-C (NDJSON with --json)')
    .option('--interval <S>', 'seconds between refreshes with --watch (or a duration: 500ms)', '1')
    .option('--json', 'print JSON'))
    .action(async (pidText: string, opts: Options) => {
      const pid = parsePid(pidText);
      const intervalMs = parseDuration(opts.interval ?? '1', '--interval');
      if (intervalMs <= 0) throw new UsageError('--interval must be positive');
      await withSession(pid, opts, async (s) => {
        if (opts.watch) await watch(s, opts, intervalMs);
        else print(await snapshot(s), opts, false);
      });
    });
}
