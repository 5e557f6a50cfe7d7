// Attach latency: from writing the attach file to the agent's hello, on a live worker
// under no load, measured with the probe's own attach (probe/attach.ts).
import { attachWorker } from '../probe/attach.js';
import { readNginxProc } from '../probe/procs.js';
import { startNginx } from '../scripts/nginx-instance.js';

const SAMPLES = 20;

export interface AttachLatency { samples: number; p50: number; max: number }

export async function measureAttach(): Promise<AttachLatency> {
  const nginx = await startNginx({
    workers: 1,
    http: `
init_worker_by_lua_block { require("nffi.inspect").start() }
server { listen 127.0.0.1:$PORT; location / { return 200; } }`,
  });
  try {
    const worker = readNginxProc(nginx.workerPids()[0]!);
    if (!worker) throw new Error('worker vanished');
    const times: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      // a user attaches at a random moment, not right after the last detach, so the
      // phase of the agent's 100 ms poll is random too
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      const t0 = performance.now();
      const link = await attachWorker(worker);
      times.push(performance.now() - t0);
      await link.detach();
    }
    times.sort((a, b) => a - b);
    return { samples: SAMPLES, p50: times[Math.floor(SAMPLES / 2)]!, max: times[SAMPLES - 1]! };
  } finally {
    await nginx.stop();
  }
}
