// `npm run demo`: a live demo worker pool (nginx, 2 workers, demo/lua/demo_app.lua calling
// the example runtimes) under a built-in load that keeps the queue interesting (a steady trickle,
// a burst every few seconds, a slow method, failures, a timeout now and then), and
// `nffi-inspect attach` on it; quitting the TUI stops everything. With --no-tui, or when stdout
// is not a terminal, the runtimes' live stats are printed once a second instead, until Ctrl-C
// (or --duration SECONDS).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatQueue, type WorkerStats } from '../cli/format/queue.js';

const DEMO_DIR = fileURLToPath(new URL('../../demo', import.meta.url));
const LOAD_LOOPS = 4;
const LOAD_PAUSE_MS = 25;

const BIN = fileURLToPath(new URL('../../bin/nffi-inspect.js', import.meta.url));
/** Every BURST_MS, BURST_SIZE slow calls at once: the queue's depth and latency move. */
const BURST_MS = 4_000;
const BURST_SIZE = 24;

const PATHS = [
  () => '/api/echo?msg=hi',
  // the slow runtime times out at 1 s: about one call in 40 waits for that
  () => `/api/slow?ms=${Math.random() < 0.025 ? 1_500 : 5 + Math.floor(Math.random() * 60)}`,
  () => '/api/fail',
  () => '/api/fanout',
  () => '/api/go?msg=hi',
  () => '/api/py?msg=hi',
];

async function bursts(nginx: NginxInstance, stopped: () => boolean, counts: { ok: number; failed: number }): Promise<void> {
  while (!stopped()) {
    for (let waited = 0; waited < BURST_MS && !stopped(); waited += 200) await new Promise((r) => setTimeout(r, 200));
    if (stopped()) return;
    await Promise.all(Array.from({ length: BURST_SIZE }, async () => {
      try {
        const res = await fetch(nginx.url(`/api/slow?ms=${150 + Math.floor(Math.random() * 250)}&msg=burst`));
        await res.arrayBuffer();
        if (res.status === 200) counts.ok++; else counts.failed++;
      } catch {
        if (!stopped()) counts.failed++;
      }
    }));
  }
}

/** `nffi-inspect attach MASTER` on this terminal; resolves with its exit code. */
function attachTui(master: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'attach', String(master)], { stdio: 'inherit' });
    // a closed terminal hangs up on the demo too: the TUI gets the word and quits (restoring
    // what is left of the terminal), then the demo stops nginx
    const hangup = () => child.kill('SIGHUP');
    process.on('SIGHUP', hangup);
    child.on('exit', (code, signal) => {
      process.off('SIGHUP', hangup);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

function parseDuration(argv: string[]): number | undefined {
  const i = argv.indexOf('--duration');
  if (i < 0) return undefined;
  const s = Number(argv[i + 1]);
  if (!Number.isFinite(s) || s <= 0) {
    process.stderr.write('demo: --duration takes a number of seconds\n');
    process.exit(2);
  }
  return s;
}

async function loadLoop(nginx: NginxInstance, stopped: () => boolean, counts: { ok: number; failed: number }) {
  for (let i = 0; !stopped(); i++) {
    const path = PATHS[i % PATHS.length]!();
    try {
      const res = await fetch(nginx.url(path));
      await res.arrayBuffer();
      if (res.status === 200) counts.ok++; else counts.failed++;
    } catch {
      if (!stopped()) counts.failed++;
    }
    await new Promise((r) => setTimeout(r, LOAD_PAUSE_MS));
  }
}

async function stats(nginx: NginxInstance): Promise<WorkerStats[]> {
  const res = await fetch(nginx.url('/nffi/stats'));
  const doc = await res.json() as { workers: WorkerStats[] };
  const live = new Set(nginx.workerPids());
  return doc.workers.filter((w) => live.has(w.pid));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const duration = parseDuration(argv);
  const tui = !argv.includes('--no-tui') && process.stdout.isTTY === true && duration === undefined;
  const nginx = await startNginx({
    workers: 2,
    http: readFileSync(`${DEMO_DIR}/nginx-http.conf`, 'utf8'),
    luaPath: [`${DEMO_DIR}/lua`],
  });
  let stopping = false;
  const counts = { ok: 0, failed: 0 };
  const loops = Array.from({ length: LOAD_LOOPS }, () => loadLoop(nginx, () => stopping, counts));
  loops.push(bursts(nginx, () => stopping, counts));
  let ticker: NodeJS.Timeout | undefined;

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (ticker) clearInterval(ticker);
    await Promise.allSettled(loops);
    await nginx.stop();
    process.stdout.write(`\ndemo stopped: ${counts.ok} requests served, ${counts.failed} failed; nginx is down.\n`);
    process.exit(0);
  };
  if (tui) {
    // the TUI owns the terminal and its signals; the demo stops when it quits
    process.on('SIGINT', () => undefined);
    await new Promise((r) => setTimeout(r, 500)); // a first burst of traffic to look at
    const code = await attachTui(nginx.masterPid);
    if (code !== 0) process.stderr.write(`demo: nffi-inspect attach exited with ${code}\n`);
    await stop();
    return;
  }
  // Ctrl-C, a kill, a closed terminal or a reader gone from our output (`| head`): nginx never
  // outlives the demo
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop());
  process.stdout.on('error', () => void stop());

  process.stdout.write(
    `nffi demo: nginx master ${nginx.masterPid}, workers ${nginx.workerPids().join(', ')}, `
    + `serving ${nginx.url('/api/echo')} (also /api/slow, /api/fail, /api/fanout, /api/go, /api/py)\n`
    + `load running (a burst every ${BURST_MS / 1000} s); runtime stats every second. Ctrl-C stops it.\n`
    + `try: curl '${nginx.url('/api/slow?ms=200')}'\n`
    + `inspect it live (another terminal): npx nffi-inspect attach ${nginx.masterPid}`
    + ` | coroutines ${nginx.masterPid} | queue ${nginx.masterPid} --watch | tasks ${nginx.masterPid}\n`,
  );
  const started = Date.now();
  ticker = setInterval(() => {
    void stats(nginx).then((workers) => {
      if (stopping) return;
      const t = new Date().toISOString().slice(11, 19);
      process.stdout.write(`\n${t}  requests ok ${counts.ok}, failed ${counts.failed}\n${formatQueue(workers)}\n`);
      if (duration !== undefined && Date.now() - started >= duration * 1000) void stop();
    }).catch((err: unknown) => process.stderr.write(`demo: stats unavailable: ${String(err)}\n`));
  }, 1000);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
