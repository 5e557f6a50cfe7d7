// A minimal probe side of probe/README.md, for tests that speak to the agent
// directly: run dir, unix socket, attach file, hello, frames, pings.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/** uid the nginx workers run as: nobody when we are root (the harness default). */
export function workerUid(): number {
  if (process.getuid?.() !== 0) return process.getuid?.() ?? 0;
  return Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
}

/** mkdir 0700 owned by uid (like the probe does when missing). */
export function makeRunDir(dir: string, uid = workerUid()): void {
  if (!existsSync(dir)) mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  chownSync(dir, uid, uid);
}

/** Writes <dir>/<pid>.attach atomically (temp + rename) with the given mode and owner. */
export function writeAttachFile(dir: string, pid: number, doc: object, mode = 0o600, uid = workerUid()): string {
  const path = join(dir, `${pid}.attach`);
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc) + '\n', { mode });
  chmodSync(tmp, mode);
  chownSync(tmp, uid, uid);
  renameSync(tmp, path);
  return path;
}

export interface Hello {
  token: string;
  pid: number;
  worker_id: number;
  uid: number;
  versions: Record<string, string>;
  jit: { enabled: boolean; flags: string[] };
}

export class AgentError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export class AgentClient {
  readonly events: any[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private pinger: NodeJS.Timeout | undefined;

  private constructor(private readonly server: Server, private readonly sock: Socket, readonly hello: Hello, readonly socketPath: string) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('close', () => this.onClose());
    sock.on('error', () => undefined);
    sock.resume();
    this.pinger = setInterval(() => this.send({ method: 'Agent.ping', params: {} }), 1000);
  }

  /** Listens, writes the attach file, waits for the agent's hello (checks the token), deletes the file. */
  static async attach(opts: { runDir: string; pid: number; timeoutMs?: number; uid?: number }): Promise<AgentClient> {
    const uid = opts.uid ?? workerUid();
    makeRunDir(opts.runDir, uid);
    const socketPath = join(opts.runDir, `probe-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
    const token = randomBytes(16).toString('hex');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
    chownSync(socketPath, uid, uid);
    const attachPath = writeAttachFile(opts.runDir, opts.pid, { socket: socketPath, token }, 0o600, uid);
    try {
      const { sock, hello } = await new Promise<{ sock: Socket; hello: Hello }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no hello from worker ${opts.pid} within ${opts.timeoutMs ?? 3000} ms`)), opts.timeoutMs ?? 3000);
        server.once('connection', (sock: Socket) => {
          let buf = Buffer.alloc(0);
          const onData = (d: Buffer): void => {
            buf = Buffer.concat([buf, d]);
            if (buf.length < 4) return;
            const len = buf.readUInt32BE(0);
            if (buf.length < 4 + len) return;
            sock.off('data', onData);
            sock.pause();
            clearTimeout(timer);
            const msg = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'));
            if (msg.method !== 'Agent.hello' || msg.params?.token !== token) {
              sock.destroy();
              reject(new Error(`bad hello: ${JSON.stringify(msg)}`));
              return;
            }
            const rest = buf.subarray(4 + len);
            if (rest.length) sock.unshift(rest);
            resolve({ sock, hello: msg.params });
          };
          sock.on('data', onData);
        });
      });
      return new AgentClient(server, sock, hello, socketPath);
    } catch (err) {
      server.close();
      throw err;
    } finally {
      rmSync(attachPath, { force: true });
    }
  }

  request(method: string, params?: object, timeoutMs = 10_000): Promise<any> {
    if (this.closed) return Promise.reject(new Error('agent link closed'));
    const id = this.nextId++;
    const err = new Error(`${method}: no answer within ${timeoutMs} ms`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(err);
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.send({ id, method, ...(params ? { params } : {}) });
    });
  }

  /** Sends raw JSON in one frame. */
  send(msg: object): void {
    if (this.closed) return;
    const body = Buffer.from(JSON.stringify(msg), 'utf8');
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(body.length, 0);
    this.sock.write(Buffer.concat([hdr, body]));
  }

  /** Like kill -9 of the probe: the socket just goes away. */
  close(): void {
    this.sock.destroy();
    this.server.close();
    this.onClose();
  }

  waitClosed(timeoutMs = 3000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve();
      const t = setTimeout(() => reject(new Error('agent link still open')), timeoutMs);
      this.sock.once('close', () => (clearTimeout(t), resolve()));
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) return;
      const msg = JSON.parse(this.buf.subarray(4, 4 + len).toString('utf8'));
      this.buf = this.buf.subarray(4 + len);
      if (msg.id !== undefined && this.pending.has(msg.id)) {
        const p = this.pending.get(msg.id)!;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new AgentError(msg.error.code, msg.error.message));
        else p.resolve(msg.result);
      } else {
        this.events.push(msg);
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    this.server.close();
    for (const p of this.pending.values()) p.reject(new Error('agent link closed'));
    this.pending.clear();
  }
}
