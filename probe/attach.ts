// The attach handshake of probe/README.md for one worker: listen on a private unix socket in
// a directory of our own inside the worker user's run dir, drop `<pid>.attach` (socket path +
// token) for the agent, wait for its Agent.hello with the right token, delete the file. The
// socket and its directory are removed as soon as the agent is in (and on every failure), so
// nothing is left behind. Every file operation goes through run-dir.ts: the run dir belongs to
// the worker user, who must not be able to steer what we (often root) create or chown.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { debuglog } from 'node:util';
import { AgentLink, type LinkOptions } from './agent-link.js';
import { ProbeError } from './errors.js';
import { nginxConfig } from './nginx-config.js';
import type { NginxProc } from './procs.js';
import type { Agent } from './protocol-types.js';
import { defaultRunDir, openRunDir, SocketDir } from './run-dir.js';
import { SocketTransport } from './transport.js';

const trace = debuglog('nffi');

export interface AttachOptions extends LinkOptions {
  /** Overrides /tmp/nffi-inspect.<uid>. */
  runDir?: string;
  /** How long to wait for Agent.hello; default 3 s. */
  helloTimeoutMs?: number;
}

/** Whether process pid still exists (a worker that died while we waited has no agent to blame). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function noAgentMessage(pid: number, waitedMs: number): string {
  if (!alive(pid)) return `worker ${pid} exited while attaching (within ${waitedMs} ms): nginx replaced or stopped it`;
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
  const dir = openRunDir(opts.runDir ?? defaultRunDir(w.uid), w.uid, w.gid);
  const attachName = `${w.pid}.attach`;
  const token = randomBytes(16).toString('hex');
  const server = createServer();
  const timeoutMs = opts.helloTimeoutMs ?? 3_000;
  let sock: SocketDir | undefined;
  try {
    sock = SocketDir.make(dir);
    await listen(server, sock.bindPath, sock.socketPath);
    sock.grant();
    dir.writeFile(attachName, JSON.stringify({ socket: sock.socketPath, token }) + '\n');
    trace('attach %d: wrote %s/%s', w.pid, dir.path, attachName);
    return await waitForHello(server, w.pid, token, timeoutMs, opts);
  } finally {
    dir.remove(attachName);
    // close() unlinks the bound path at once (libuv): still through the socket dir's descriptor
    server.close();
    sock?.remove();
    dir.close();
  }
}

function listen(server: Server, path: string, shown: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new ProbeError(`cannot listen on ${shown}: ${err.message}`)));
    server.listen(path, () => resolve());
  });
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
