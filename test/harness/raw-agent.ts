// A probe side that may send anything: raw bytes, frames whose length header lies, floods in
// one write. Attaches like test/harness/agent-client.ts (run dir, attach file, hello; its
// socket named as the probe names its own), pings every second and collects every frame the
// agent sends, for test/hostile-frames.test.ts.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { makeRunDir, workerUid, writeAttachFile, type Hello } from './agent-client.js';

export interface AgentFrame {
  id?: unknown;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string };
}

/** A 4-byte big-endian length (the real one unless `length` says otherwise), then body. */
export function frame(body: Buffer, length = body.length): Buffer {
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(length, 0);
  return Buffer.concat([hdr, body]);
}

export class RawAgent {
  readonly frames: AgentFrame[] = [];
  /** Bytes the agent sent that did not parse as JSON (never expected). */
  readonly garbage: string[] = [];
  closed = false;
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1_000_000;
  private waiters: (() => void)[] = [];
  private readonly closedP: Promise<void>;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(private readonly sock: Socket, private readonly done: () => void, readonly hello: Hello) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => undefined);
    // the agent ends a session after 5 s without a frame
    this.heartbeat = setInterval(() => void this.write(frame(Buffer.from('{"method":"Agent.ping"}'))), 1_000);
    this.closedP = new Promise((resolve) => sock.on('close', () => {
      this.closed = true;
      clearInterval(this.heartbeat);
      this.done();
      this.wake();
      resolve();
    }));
    sock.resume();
  }

  static async attach(runDir: string, pid: number, timeoutMs = 5_000): Promise<RawAgent> {
    const uid = workerUid();
    makeRunDir(runDir, uid);
    const socketPath = join(runDir, `probe-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
    const token = randomBytes(16).toString('hex');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
    chownSync(socketPath, uid, uid);
    const attachPath = writeAttachFile(runDir, pid, { socket: socketPath, token }, 0o600, uid);
    const close = (): void => {
      server.close();
      rmSync(socketPath, { force: true });
    };
    try {
      const { sock, hello, rest } = await new Promise<{ sock: Socket; hello: Hello; rest: Buffer }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no hello from worker ${pid} within ${timeoutMs} ms`)), timeoutMs);
        server.once('connection', (s: Socket) => {
          let b = Buffer.alloc(0);
          const onData = (d: Buffer): void => {
            b = Buffer.concat([b, d]);
            if (b.length < 4 || b.length < 4 + b.readUInt32BE(0)) return;
            s.off('data', onData);
            s.pause();
            clearTimeout(timer);
            const len = b.readUInt32BE(0);
            const msg = JSON.parse(b.subarray(4, 4 + len).toString('utf8'));
            if (msg.method !== 'Agent.hello' || msg.params?.token !== token) return reject(new Error(`bad hello ${JSON.stringify(msg)}`));
            resolve({ sock: s, hello: msg.params, rest: b.subarray(4 + len) });
          };
          s.on('data', onData);
        });
      });
      const agent = new RawAgent(sock, close, hello);
      if (rest.length) agent.onData(rest);
      return agent;
    } catch (err) {
      close();
      throw err;
    } finally {
      rmSync(attachPath, { force: true });
    }
  }

  /** Bytes as they are, in one write. */
  write(bytes: Buffer): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.sock.write(bytes, () => resolve()));
  }

  /** A request with a fresh id (from 1,000,000 up, apart from the corpus ids); its answer. */
  async request(method: string, params?: unknown, timeoutMs = 10_000): Promise<AgentFrame> {
    const id = this.nextId++;
    await this.write(frame(Buffer.from(JSON.stringify(params === undefined ? { id, method } : { id, method, params }))));
    return this.waitFor((f) => f.id === id, timeoutMs, `an answer to ${method} (id ${id})`);
  }

  /** The first frame (seen already, or to come) that matches. */
  async waitFor(pred: (f: AgentFrame) => boolean, timeoutMs: number, what: string): Promise<AgentFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closed) throw new Error(`link closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; last frames: ${JSON.stringify(this.frames.slice(-3)).slice(0, 600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Resolves once the agent (or we) closed the socket; rejects after timeoutMs. */
  waitClosed(timeoutMs: number): Promise<void> {
    return Promise.race([
      this.closedP,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`link still open after ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  }

  close(): void {
    this.sock.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) break;
      const text = this.buf.subarray(4, 4 + len).toString('utf8');
      this.buf = this.buf.subarray(4 + len);
      try {
        const msg = JSON.parse(text) as AgentFrame;
        // heartbeats would drown everything else
        if (msg.method !== 'Agent.ping' || msg.id !== undefined) this.frames.push(msg);
        else this.pings++;
      } catch {
        this.garbage.push(text.slice(0, 200));
      }
    }
    this.wake();
  }

  /** Agent.ping events (answers to ours) received. */
  pings = 0;
}
