// `serve`'s HTTP side (probe/README.md), on a unix socket only its owner can open, or on TCP
// when asked: /json/version, /json/list, /json/protocol, /json/close/<worker pid>,
// /json/breakpoints (GET: the list; DELETE /json/breakpoints/<id>: remove one), and the
// WebSocket upgrades /devtools/browser and /devtools/worker/<pid>. Every request and upgrade
// passes the gate first (probe/serve-auth.ts: Host, Origin, token).
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { WebSocketServer } from 'ws';
import { overall } from './breakpoint-wire.js';
import { Breakpoints } from './breakpoints.js';
import { PROTOCOL_VERSION } from './protocol-types.js';
import { repoRoot } from './repo-root.js';
import { hostPart, makeGate, STATUS_TEXT, type Listen, type Refusal } from './serve-auth.js';
import { SocketHub } from './serve-ws.js';
import type { Session } from './session.js';

const trace = debuglog('nffi');

export interface ServeOptions {
  /** A unix socket path (its directory must be private), or TCP host (an IP) and port (0: any). */
  listen: Listen;
  token: string;
  allowOrigins?: string[];
}

export interface ServeHandle {
  /** Where it listens (the port once bound). */
  listen: Listen;
  breakpoints: Breakpoints;
  /** `why`: what the front ends are told (the close frame's reason). */
  close(why?: string): Promise<void>;
}

export const PRODUCT = 'nffi-inspect/0.1.0';

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json; charset=UTF-8' });
  res.end(text);
}

/** ws:// (or ws+unix: for the socket) base of the WebSocket URLs, and their ?token= tail. */
interface Urls { ws: string; query: string }

function urlsOf(listen: Listen, token: string): Urls {
  const query = `?token=${token}`;
  if ('socket' in listen) return { ws: `ws+unix:${listen.socket}:`, query };
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : hostPart(listen.host);
  return { ws: `ws://${host}:${listen.port}`, query };
}

function targetList(session: Session, urls: Urls): unknown[] {
  return session.targets().filter((t) => t.attached).map((t) => ({
    id: String(t.pid),
    type: 'worker',
    title: `nginx worker ${t.pid}${t.worker_id !== undefined ? ` (#${t.worker_id})` : ''}`,
    description: `user ${t.user ?? '?'}, master ${t.master_pid ?? '?'}`,
    url: `nginx://worker/${t.pid}`,
    webSocketDebuggerUrl: `${urls.ws}/devtools/worker/${t.pid}${urls.query}`,
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

function route(session: Session, bps: Breakpoints, urls: Urls, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]!.replace(/\/$/, '');
  if (breakpointRoute(bps, path, req, res)) return;
  if (path === '/json/version') {
    return json(res, 200, {
      Browser: PRODUCT, 'Protocol-Version': PROTOCOL_VERSION,
      webSocketDebuggerUrl: `${urls.ws}/devtools/browser${urls.query}`,
    });
  }
  if (path === '/json' || path === '/json/list') return json(res, 200, targetList(session, urls));
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

function refuseRequest(res: ServerResponse, r: Refusal): void {
  res.writeHead(r.status, {
    'Content-Type': 'text/plain',
    Connection: 'close',
    ...(r.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {}),
  });
  res.end(`${r.status} ${STATUS_TEXT[r.status]}\n`);
}

function refuseUpgrade(socket: Duplex, r: Refusal): void {
  const auth = r.status === 401 ? 'WWW-Authenticate: Bearer\r\n' : '';
  socket.end(`HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status]}\r\n${auth}Connection: close\r\nContent-Length: 0\r\n\r\n`);
}

function listenOn(server: Server, listen: Listen): Promise<Listen> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      if ('socket' in listen) {
        chmodSync(listen.socket, 0o600);
        return resolve(listen);
      }
      const addr = server.address();
      resolve({ host: listen.host, port: typeof addr === 'object' && addr ? addr.port : listen.port });
    };
    if ('socket' in listen) {
      // Our private dir: a leftover socket of a dead serve with this pid is ours to remove.
      rmSync(listen.socket, { force: true });
      server.listen(listen.socket, done);
    } else {
      server.listen(listen.port, listen.host, done);
    }
  });
}

export async function serveSession(session: Session, opts: ServeOptions): Promise<ServeHandle> {
  const breakpoints = new Breakpoints(session);
  const hub = new SocketHub(session, breakpoints);
  const wss = new WebSocketServer({ noServer: true });
  // The allowed Host values name the bound port: nothing gets in before it is known.
  let gate = (_req: IncomingMessage): Refusal | undefined => ({ status: 403, why: 'not listening yet' });
  let urls: Urls = urlsOf(opts.listen, opts.token);
  const server: Server = createServer((req, res) => {
    const refused = gate(req);
    if (refused) {
      trace('serve refused %s %s: %s', req.method, (req.url ?? '').split('?')[0], refused.why);
      return refuseRequest(res, refused);
    }
    route(session, breakpoints, urls, req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refused = gate(req);
    if (refused) {
      trace('serve refused upgrade %s: %s', (req.url ?? '').split('?')[0], refused.why);
      return refuseUpgrade(socket, refused);
    }
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
  const listen = await listenOn(server, opts.listen);
  gate = makeGate({ ...opts, listen });
  urls = urlsOf(listen, opts.token);
  return {
    listen,
    breakpoints,
    close: (why?: string) => new Promise<void>((done) => {
      hub.closeAll(why);
      wss.close();
      server.closeAllConnections();
      server.close(() => {
        if ('socket' in listen) rmSync(listen.socket, { force: true });
        done();
      });
    }),
  };
}
