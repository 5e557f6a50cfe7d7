// Who may talk to `serve` (DESIGN.md, "Trust model"). Every HTTP request and every WebSocket
// upgrade, on the unix socket and on TCP alike, must
//   - name the listen address in Host (127.0.0.1:PORT, localhost:PORT, [::1]:PORT, the --host
//     address; `localhost` on the unix socket), so a page that rebinds a DNS name to 127.0.0.1
//     cannot drive a fixed port;
//   - carry no browser Origin unless --allow-origin lists it (no Origin: a non-browser client);
//   - bring the token, `?token=<hex>` or `Authorization: Bearer <hex>`, compared in constant time.
// A refusal is 403 (Host, Origin) or 401 (token) with nothing else in it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** 256 bits from the CSPRNG, as hex. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

export type Listen = { socket: string } | { host: string; port: number };

export interface Refusal {
  status: 401 | 403;
  /** For the trace only; never sent. */
  why: string;
}

export const STATUS_TEXT = { 401: 'Unauthorized', 403: 'Forbidden' } as const;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant time whatever the lengths (both sides hashed first). */
export function sameToken(given: string, token: string): boolean {
  return timingSafeEqual(digest(given), digest(token));
}

export function isLoopback(host: string): boolean {
  return host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';

/** An address as it appears in a Host header. */
export function hostPart(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Every Host header value that names this endpoint. */
export function allowedHosts(listen: Listen): Set<string> {
  if ('socket' in listen) return new Set(['localhost', '127.0.0.1', '[::1]']);
  const names = new Set<string>([hostPart(listen.host)]);
  if (isLoopback(listen.host) || isWildcard(listen.host)) for (const n of ['127.0.0.1', 'localhost', '[::1]']) names.add(n);
  if (isWildcard(listen.host)) {
    for (const nets of Object.values(networkInterfaces())) for (const n of nets ?? []) names.add(hostPart(n.address));
  }
  const out = new Set<string>();
  for (const n of names) {
    out.add(`${n}:${listen.port}`);
    if (listen.port === 80) out.add(n);
  }
  return out;
}

function tokenOf(req: IncomingMessage): string | undefined {
  const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (auth) return auth[1];
  const q = (req.url ?? '').indexOf('?');
  return q < 0 ? undefined : new URLSearchParams((req.url ?? '').slice(q + 1)).get('token') ?? undefined;
}

export interface GateOptions {
  listen: Listen;
  token: string;
  /** Browser origins let in (exact, e.g. http://localhost:3000; `*` for any). */
  allowOrigins?: string[];
}

/** The check run before anything else on every request and upgrade. */
export function makeGate(opts: GateOptions): (req: IncomingMessage) => Refusal | undefined {
  const hosts = allowedHosts(opts.listen);
  const origins = new Set(opts.allowOrigins ?? []);
  return (req) => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts.has(host)) return { status: 403, why: `Host ${JSON.stringify(host)}` };
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has('*') && !origins.has(origin)) {
      return { status: 403, why: `Origin ${JSON.stringify(origin)}` };
    }
    const given = tokenOf(req);
    if (given === undefined) return { status: 401, why: 'no token' };
    if (!sameToken(given, opts.token)) return { status: 401, why: 'wrong token' };
    return undefined;
  };
}
