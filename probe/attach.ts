// The attach handshake of probe/README.md for one worker: listen on a private unix socket in
// the worker user's run dir, drop `<pid>.attach` (socket path + token) for the agent, wait
// for its Agent.hello with the right token, delete the file. The socket path is unlinked as
// soon as the agent is in (and on every failure), so nothing is left behind.
import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { AgentLink, type LinkOptions } from './agent-link.js';
import { ProbeError } from './errors.js';
import { nginxConfig } from './nginx-config.js';
import type { NginxProc } from './procs.js';
import type { Agent } from './protocol-types.js';
import { defaultRunDir, ensureRunDir, giveTo } from './run-dir.js';
import { SocketTransport } from './transport.js';

const trace = debuglog('nffi');

export interface AttachOptions extends LinkOptions {
  /** Overrides /tmp/nffi-inspect.<uid>. */
  runDir?: string;
  /** How long to wait for Agent.hello; default 3 s. */
  helloTimeoutMs?: number;
}

export function noAgentMessage(pid: number, waitedMs: number): string {
  const { lua_package_path: path, nginx_http: agentLine } = nginxConfig();
  return `worker ${pid} has no agent (no answer within ${waitedMs} ms); add to the http {} block of ` +
    `nginx.conf: ${agentLine} and lua_package_path "${path};"; then reload (nffi-inspect config prints both)`;
}

export function checkPermission(w: NginxProc): void {
  const euid = process.geteuid?.() ?? -1;
  if (euid === 0 || euid === w.uid) return;
  throw new ProbeError(`permission denied: attaching to worker ${w.pid} (user ${w.user}) needs root or ${w.user}`, 'EPERM');
}

export async function attachWorker(w: NginxProc, opts: AttachOptions = {}): Promise<AgentLink> {
  checkPermission(w);
  const dir = ensureRunDir(opts.runDir ?? defaultRunDir(w.uid), w.uid, w.gid);
  const socketPath = join(dir, `probe-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  const attachFile = join(dir, `${w.pid}.attach`);
  const token = randomBytes(16).toString('hex');
  const server = createServer();
  const timeoutMs = opts.helloTimeoutMs ?? 3_000;
  try {
    await listen(server, socketPath);
    chmodSync(socketPath, 0o600);
    giveTo(socketPath, w.uid, w.gid);
    writeAtomically(attachFile, JSON.stringify({ socket: socketPath, token }) + '\n', w);
    trace('attach %d: wrote %s', w.pid, attachFile);
    return await waitForHello(server, w.pid, token, timeoutMs, opts);
  } finally {
    rmSync(attachFile, { force: true });
    server.close();
    rmSync(socketPath, { force: true });
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new ProbeError(`cannot listen on ${path}: ${err.message}`)));
    server.listen(path, () => resolve());
  });
}

function writeAtomically(path: string, text: string, w: NginxProc): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    giveTo(tmp, w.uid, w.gid);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new ProbeError(`cannot write ${path}: ${(err as Error).message}`);
  }
}

/** The first connection whose first frame is Agent.hello for `pid` with `token`; others are dropped. */
function waitForHello(
  server: Server, pid: number, token: string, timeoutMs: number, opts: LinkOptions,
): Promise<AgentLink> {
  return new Promise((resolve, reject) => {
    const candidates = new Set<SocketTransport>();
    const timer = setTimeout(() => {
      done();
      reject(new ProbeError(noAgentMessage(pid, timeoutMs), 'NOAGENT'));
    }, timeoutMs);
    const done = (keep?: SocketTransport): void => {
      clearTimeout(timer);
      server.off('connection', onConnection);
      for (const t of candidates) if (t !== keep) t.dispose();
    };
    const onConnection = (sock: Socket): void => {
      const t = new SocketTransport(sock, `worker ${pid}`);
      candidates.add(t);
      t.onClose(() => candidates.delete(t));
      t.onMessage((m) => {
        const msg = m as { method?: unknown; params?: Partial<Agent.HelloEvent> };
        if (msg.method !== 'Agent.hello' || msg.params?.token !== token || msg.params.pid !== pid) {
          trace('attach %d: rejected a connection (first frame %j)', pid, msg.method);
          t.dispose();
          return;
        }
        done(t);
        // The link takes over the transport now, before any frame that followed hello.
        resolve(new AgentLink(t, msg.params as Agent.HelloEvent, opts));
      });
    };
    server.on('connection', onConnection);
  });
}
