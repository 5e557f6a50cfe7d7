// The client side of a running `serve` (found through probe/registry.ts): where its WebSockets
// are (client/remote.ts drives them with chrome-remote-interface, the token in the URL), and
// the one HTTP request a client still makes (/json/close/<pid>, which has no WebSocket
// method), over its unix socket (or TCP when it was started with --port/--host). A refusal or
// an unreachable probe is one ProbeError line.
import { request, type IncomingMessage } from 'node:http';
import { ProbeError } from './errors.js';
import { hostPart } from './serve-auth.js';
import type { ServeEntry } from './registry.js';

const TIMEOUT_MS = 5_000;

/** unix:/path or host:port, for messages. */
export function where(entry: ServeEntry): string {
  return entry.socket ? `unix:${entry.socket}` : `${hostPart(entry.host ?? '127.0.0.1')}:${entry.port}`;
}

/** The address to connect to for an entry listening on every address. */
function connectHost(entry: ServeEntry): string {
  const h = entry.host ?? '127.0.0.1';
  return h === '0.0.0.0' ? '127.0.0.1' : h === '::' ? '::1' : h;
}

export function unreachable(entry: ServeEntry, err: Error): ProbeError {
  return new ProbeError(`cannot reach serve probe ${entry.probe_pid} at ${where(entry)}: ${err.message}`);
}

/** The one-line reason for a 401/403, or undefined for any other status. */
export function refusal(entry: ServeEntry, status: number | undefined): ProbeError | undefined {
  if (status === 401) {
    return new ProbeError(`serve probe ${entry.probe_pid} refused the token from its registry entry (HTTP 401): restart serve, or remove a stale serve-${entry.probe_pid}.json`, 'EAUTH');
  }
  if (status === 403) {
    return new ProbeError(`serve probe ${entry.probe_pid} refused this client's Host or Origin (HTTP 403)`, 'EAUTH');
  }
  return undefined;
}

const headers = (entry: ServeEntry): Record<string, string> => ({ Authorization: `Bearer ${entry.token}` });

export interface ServeReply { status: number; body: unknown }

/** One HTTP request; 401/403 reject with the one-line reason. */
export function serveHttp(entry: ServeEntry, method: string, path: string): Promise<ServeReply> {
  const target = entry.socket
    ? { socketPath: entry.socket, host: 'localhost' }
    : { host: connectHost(entry), port: entry.port };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method, path, headers: headers(entry), timeout: TIMEOUT_MS }, (res: IncomingMessage) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        const refused = refusal(entry, res.statusCode);
        if (refused) return reject(refused);
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // plain-text error
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(unreachable(entry, err)));
    req.end();
  });
}

/** The WebSocket URL of `path` (e.g. /devtools/browser), token included: ws+unix:SOCKET:PATH
 * on the unix socket (the Host header is then `localhost`), else ws://HOST:PORT/PATH. */
export function serveWsUrl(entry: ServeEntry, path: string): string {
  const query = `?token=${encodeURIComponent(entry.token)}`;
  return entry.socket
    ? `ws+unix:${entry.socket}:${path}${query}`
    : `ws://${hostPart(connectHost(entry))}:${entry.port}${path}${query}`;
}
