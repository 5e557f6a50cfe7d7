// A stand-in for the Lua agent that follows probe/README.md's wire spec, for unit tests of the
// probe without nginx: it polls for `<run dir>/<pid>.attach`, connects, sends Agent.hello and
// answers pings and requests from a table of handlers.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { encodeFrame, FrameDecoder } from '../../probe/frames.js';

export type Handlers = Record<string, (params: any) => unknown>;

export interface FakeAgentOptions {
  pid: number;
  runDir: string;
  handlers?: Handlers;
  /** Send this token instead of the one in the attach file. */
  token?: string;
  /** Do not answer pings (to test the silence timeout). */
  mute?: boolean;
}

export class FakeAgent {
  socket: Socket | undefined;
  readonly received: any[] = [];
  private timer: NodeJS.Timeout;

  constructor(private readonly o: FakeAgentOptions) {
    this.timer = setInterval(() => this.poll(), 20);
  }

  private poll(): void {
    const file = join(this.o.runDir, `${this.o.pid}.attach`);
    if (this.socket || !existsSync(file)) return;
    const { socket, token } = JSON.parse(readFileSync(file, 'utf8')) as { socket: string; token: string };
    const decoder = new FrameDecoder();
    this.socket = createConnection(socket, () => {
      this.send({
        method: 'Agent.hello',
        params: {
          token: this.o.token ?? token, pid: this.o.pid, worker_id: 0, uid: process.getuid!(),
          versions: { nginx: '1.0', ngx_lua: '0.10', luajit: '2.1', agent: 'fake' },
          jit: { enabled: true, flags: ['fold'] },
        },
      });
    });
    this.socket.on('data', (chunk: Buffer) => decoder.push(chunk).forEach((m) => this.onMessage(m as any)));
    this.socket.on('error', () => {});
    this.socket.on('close', () => { this.socket = undefined; });
    if (this.o.token) rmSync(file, { force: true });
  }

  private onMessage(m: any): void {
    this.received.push(m);
    if (m.method === 'Agent.ping') {
      if (!this.o.mute) this.send({ method: 'Agent.ping' });
      return;
    }
    if (typeof m.id !== 'number') return;
    if (m.method === 'Agent.detach') {
      this.send({ id: m.id, result: {} });
      this.socket?.end();
      return;
    }
    const h = this.o.handlers?.[m.method];
    if (!h) return this.send({ id: m.id, error: { code: -32601, message: `unknown method ${m.method}` } });
    try {
      this.send({ id: m.id, result: h(m.params ?? {}) });
    } catch (err) {
      this.send({ id: m.id, error: { code: -32000, message: (err as Error).message } });
    }
  }

  send(m: unknown): void {
    this.socket?.write(encodeFrame(m));
  }

  stop(): void {
    clearInterval(this.timer);
    this.socket?.destroy();
  }
}
