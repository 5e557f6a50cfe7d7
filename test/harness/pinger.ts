// Times a URL back to back from a thread of its own, so the test's own work (parsing a
// many-megabyte answer, building a huge frame) never counts as the worker's stall: what
// a second client of the worker would see.
import { Worker } from 'node:worker_threads';

const PINGER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
let running = false;
function once() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get(workerData.url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, err: e.message }));
  });
}
async function loop() {
  let worst = 0, n = 0;
  const failures = [];
  while (running) {
    const r = await once();
    n++;
    if (r.status !== 200) failures.push(r.err || r.status);
    worst = Math.max(worst, r.ms);
    await new Promise((res) => setTimeout(res, 5));
  }
  parentPort.postMessage({ worst, n, failures });
}
parentPort.on('message', (m) => {
  if (m === 'start') { running = true; void loop(); parentPort.postMessage('started'); }
  else running = false;
});
`;

export interface Pinged { worst: number; n: number; failures: unknown[] }

export interface Pinger {
  /** Starts timing; `stop` resolves with the longest answer (ms), the count and the failures. */
  start(): Promise<{ stop: () => Promise<Pinged> }>;
  close(): Promise<void>;
}

export function pinger(url: () => string): Pinger {
  let w: Worker | undefined;
  return {
    async start() {
      w ??= new Worker(PINGER, { eval: true, workerData: { url: url() } });
      const t = w;
      await new Promise<void>((resolve) => {
        t.once('message', () => resolve());
        t.postMessage('start');
      });
      return {
        stop: () => new Promise<Pinged>((resolve) => {
          t.once('message', (m: Pinged) => resolve(m));
          t.postMessage('stop');
        }),
      };
    },
    async close() {
      await w?.terminate();
      w = undefined;
    },
  };
}
