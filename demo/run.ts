// `npm run demo`: a live demo worker (nginx + demo/lua/demo_app.lua calling the
// example runtimes) under a light built-in load, with the runtimes' live stats
// printed once a second until Ctrl-C (or --duration SECONDS).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startNginx, type NginxInstance } from '../scripts/nginx-instance.js';
import { formatQueue, type WorkerStats } from '../cli/format/queue.js';

const DEMO_DIR = fileURLToPath(new URL('../../demo', import.meta.url));
const LOAD_LOOPS = 4;
const LOAD_PAUSE_MS = 25;

const PATHS = [
  () => '/api/echo?msg=hi',
  () => `/api/slow?ms=${5 + Math.floor(Math.random() * 60)}`,
  () => '/api/fail',
  () => '/api/fanout',
];

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
  const duration = parseDuration(process.argv.slice(2));
  const nginx = await startNginx({
    workers: 2,
    http: readFileSync(`${DEMO_DIR}/nginx-http.conf`, 'utf8'),
    luaPath: [`${DEMO_DIR}/lua`],
  });
  let stopping = false;
  const counts = { ok: 0, failed: 0 };
  const loops = Array.from({ length: LOAD_LOOPS }, () => loadLoop(nginx, () => stopping, counts));

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(ticker);
    await Promise.allSettled(loops);
    await nginx.stop();
    process.stdout.write(`\ndemo stopped: ${counts.ok} requests served, ${counts.failed} failed; nginx is down.\n`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  process.stdout.write(
    `nffi demo: nginx master ${nginx.masterPid}, workers ${nginx.workerPids().join(', ')}, `
    + `serving ${nginx.url('/api/echo')} (also /api/slow, /api/fail, /api/fanout)\n`
    + `light load running; runtime stats every second. Ctrl-C stops it.\n`
    + `try: curl '${nginx.url('/api/slow?ms=200')}'\n`
    + `inspect it live (another terminal): npx nffi-inspect coroutines ${nginx.masterPid}`
    + ` | queue ${nginx.masterPid} --watch | tasks ${nginx.masterPid}\n`,
  );
  const started = Date.now();
  const ticker = setInterval(() => {
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
