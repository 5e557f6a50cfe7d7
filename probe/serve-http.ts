// `serve`'s HTTP side, on 127.0.0.1 only (probe/README.md): /json/version, /json/list,
// /json/protocol, /json/close/<worker pid>, /json/breakpoints (GET: the list; DELETE
// /json/breakpoints/<id>: remove one), and the WebSocket upgrades /devtools/browser and
// /devtools/worker/<pid>.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { overall } from './breakpoint-wire.js';
import { Breakpoints } from './breakpoints.js';
import { PROTOCOL_VERSION } from './protocol-types.js';
import { repoRoot } from './repo-root.js';
import { SocketHub } from './serve-ws.js';
import type { Session } from './session.js';

export interface ServeHandle {
  port: number;
  breakpoints: Breakpoints;
  close(): Promise<void>;
}

export const PRODUCT = 'nffi-inspect/0.1.0';

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json; charset=UTF-8' });
  res.end(text);
}

export function targetList(session: Session, port: number): unknown[] {
  return session.targets().filter((t) => t.attached).map((t) => ({
    id: String(t.pid),
    type: 'worker',
    title: `nginx worker ${t.pid}${t.worker_id !== undefined ? ` (#${t.worker_id})` : ''}`,
    description: `user ${t.user ?? '?'}, master ${t.master_pid ?? '?'}`,
    url: `nginx://worker/${t.pid}`,
    webSocketDebuggerUrl: `ws://127.0.0.1:${port}/devtools/worker/${t.pid}`,
  }));
}

function breakpointRoute(bps: Breakpoints, path: string, req: IncomingMessage, res: ServerResponse): boolean {
  if (path === '/json/breakpoints' && req.method === 'GET') {
    bps.list().then((all) => json(res, 200, all.map(overall)), (err: Error) => json(res, 500, err.message));
    return true;
  }
  const one = /^\/json\/breakpoints\/(\d+)$/.exec(path);
  if (one && req.method === 'DELETE') {
    bps.remove(Number(one[1])).then(() => json(res, 200, {}), (err: Error) => json(res, 404, err.message));
    return true;
  }
  return false;
}

function route(session: Session, bps: Breakpoints, port: number, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]!.replace(/\/$/, '');
  if (breakpointRoute(bps, path, req, res)) return;
  if (path === '/json/version') {
    return json(res, 200, {
      Browser: PRODUCT, 'Protocol-Version': PROTOCOL_VERSION,
      webSocketDebuggerUrl: `ws://127.0.0.1:${port}/devtools/browser`,
    });
  }
  if (path === '/json' || path === '/json/list') return json(res, 200, targetList(session, port));
  if (path === '/json/protocol') {
    return json(res, 200, JSON.parse(readFileSync(join(repoRoot(), 'probe', 'protocol.json'), 'utf8')));
  }
  const close = /^\/json\/close\/(\d+)$/.exec(path);
  if (close) {
    session.detach(Number(close[1]), 'detached by /json/close').then(
      () => json(res, 200, 'Target is closing'),
      (err: Error) => json(res, 404, err.message),
    );
    return;
  }
  json(res, 404, `unknown path ${path}`);
}

export function serveSession(session: Session, port = 0): Promise<ServeHandle> {
  const breakpoints = new Breakpoints(session);
  const hub = new SocketHub(session, breakpoints);
  const wss = new WebSocketServer({ noServer: true });
  let bound = 0;
  const server: Server = createServer((req, res) => route(session, breakpoints, bound, req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0]!;
    const worker = /^\/devtools\/worker\/(\d+)$/.exec(path);
    const pid = worker ? Number(worker[1]) : undefined;
    const known = pid !== undefined && session.targets().some((t) => t.pid === pid && t.attached);
    if (path !== '/devtools/browser' && !known) {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => (pid === undefined ? hub.addBrowser(ws) : hub.addWorker(ws, pid)));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      bound = typeof addr === 'object' && addr ? addr.port : port;
      resolve({
        port: bound,
        breakpoints,
        close: () => new Promise<void>((done) => {
          hub.closeAll();
          wss.close();
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}
