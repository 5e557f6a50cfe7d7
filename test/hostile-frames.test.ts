// A hostile probe against a real worker: every case of test/corpus/frames/ (malformed,
// oversized, truncated, NaN/Infinity, deep nesting, unknown methods, wrong types, huge strings
// of control characters, limits at and past their maxima, floods) is sent through the raw
// socket, and per case: the agent answers as the case expects, the worker keeps answering
// /ping within 50 ms throughout, holds its event loop at most a few ms at a time (CPU between
// the ticks of a 1 ms timer), keeps its pid, and logs no [alert]/[crit]/[emerg] or signal.
// A table of case / outcome / worst stall is printed at the end. Also: the agent's parameter
// declarations (lua/nffi/inspect/params.lua) match probe/protocol.json; and the CLI, against a
// second nginx: a client's escape sequences reaching a logpoint are printed escaped, a worker
// held by another session is said to be held (by whom), never to have no agent, and
// `breakpoint MASTER` names a worker it could not reach and exits 1 (unless --partial).
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oneLineError, runCli, startCli, stopCliAfterEach } from './harness/cli.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { pinger, type Pinged } from './harness/pinger.js';
import { frame, RawAgent, type AgentFrame } from './harness/raw-agent.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-hostile-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');
const CORPUS = new URL('./corpus/frames/', import.meta.url);

const HOSTILE_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
    require("hostile_app").init()
}
server {
    listen 127.0.0.1:$PORT;
    location / {
        content_by_lua_block { require("hostile_app").route() }
    }
}
`;

const nginx = useNginx({
  // one worker: every /ping lands on the worker under attack
  workers: 1,
  luaPath: [FIXTURE_LUA],
  env: { NFFI_INSPECT_RUN_DIR: RUN_DIR },
  http: HOSTILE_HTTP,
});

// --- the corpus ------------------------------------------------------------------------------

type Part = string | { repeat: string; times: number } | { hex: string } | { var: 'coroutine' } | Part[];
interface Step { frame?: Part; raw?: Part; length?: number; times?: number; chunk?: number; close?: boolean; wait?: number }
interface Expect { id?: number; result?: boolean; error?: number; event?: string; code?: number; message?: string; count?: number }
interface Case {
  name: string;
  steps: Step[];
  expect?: Expect[];
  closed?: boolean;
  counts?: Record<string, number>;
  pings?: number;
  after?: Step[];
  /** The longest hold of the event loop allowed (CPU ms), when not HOLD_MS, and why. */
  hold_ms?: number;
  why?: string;
  file: string;
}

/** What the ticks of a 1 ms timer see at most: the agent's slice (0.75 ms), the timer's own
 * work, a GC step; the agent promises ~1-2 ms. */
const HOLD_MS = 3;
/** The brief's bound: the worker keeps answering /ping within this, throughout. */
const PING_MS = 50;

const cases: Case[] = readdirSync(CORPUS).filter((f) => f.endsWith('.json')).sort().flatMap((file) =>
  (JSON.parse(readFileSync(new URL(file, CORPUS), 'utf8')) as Case[]).map((c) => ({ ...c, file })));

const vars: Record<string, string> = {};

function bytes(p: Part): Buffer {
  if (typeof p === 'string') return Buffer.from(p, 'utf8');
  if (Array.isArray(p)) return Buffer.concat(p.map(bytes));
  if ('repeat' in p) return Buffer.from(p.repeat.repeat(p.times), 'utf8');
  if ('hex' in p) return Buffer.from(p.hex, 'hex');
  return Buffer.from(vars[p.var]!, 'utf8');
}

function stepBytes(s: Step): Buffer {
  const one = s.frame !== undefined ? frame(bytes(s.frame), s.length) : bytes(s.raw ?? '');
  return s.times ? Buffer.concat(Array.from({ length: s.times }, () => one)) : one;
}

type Prepared = { close: true } | { wait: number } | { bytes: Buffer; chunk?: number };

/** Every step's bytes, built before anything is timed. */
function prepare(steps: Step[]): Prepared[] {
  return steps.map((s) => (s.close ? { close: true } : s.wait ? { wait: s.wait } : { bytes: stepBytes(s), chunk: s.chunk }));
}

async function run(agent: RawAgent, steps: Prepared[]): Promise<void> {
  for (const s of steps) {
    if ('close' in s) agent.close();
    else if ('wait' in s) await new Promise((r) => setTimeout(r, s.wait));
    else if (s.chunk) {
      for (let i = 0; i < s.bytes.length; i += s.chunk) await agent.write(s.bytes.subarray(i, i + s.chunk));
    } else await agent.write(s.bytes);
  }
}

/** Polls until `ok()`; the error says what was wanted and what came instead. */
async function until(ok: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`no ${what()} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function matches(f: AgentFrame, e: Expect): boolean {
  if (e.event !== undefined) {
    if (f.method !== e.event || f.id !== undefined) return false;
    if (e.code !== undefined && f.params?.code !== e.code) return false;
    return e.message === undefined || new RegExp(e.message).test(String(f.params?.message));
  }
  if (f.id !== e.id || f.method !== undefined) return false;
  if (e.result && !('result' in f)) return false;
  if (e.error !== undefined && f.error?.code !== e.error) return false;
  return e.message === undefined || new RegExp(e.message).test(String(f.error?.message));
}

/** `error -32700 (id 1)`, `event -32600 x3000`, `result`, `closed`: what came back. */
function outcome(frames: AgentFrame[], closed: boolean, pings: number): string {
  const kinds = new Map<string, number>();
  for (const f of frames) {
    const k = f.method === 'Agent.protocolError' ? `protocolError ${f.params?.code}` : f.error ? `error ${f.error.code}` : 'result';
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  const parts = [...kinds].map(([k, n]) => (n > 1 ? `${k} x${n}` : k));
  if (pings) parts.push(`ping x${pings}`);
  if (closed) parts.push('closed');
  return parts.join(', ') || 'ignored';
}

// --- the worker's health ---------------------------------------------------------------------

const held: ClientRequest[] = [];
let agent: RawAgent | undefined;
let workerPid = 0;
let logOffset = 0;
const rows: string[][] = [];

async function session(): Promise<RawAgent> {
  if (agent && !agent.closed) return agent;
  // the agent goes dormant after a session and polls again every 100 ms
  agent = await waitFor(() => RawAgent.attach(RUN_DIR, workerPid, 2_000), { timeout: 15_000, interval: 100, what: `a session with worker ${workerPid}` });
  return agent;
}

async function protocolCounts(): Promise<Record<string, number>> {
  const r = await (await session()).request('Agent.getStats');
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  return r.result.protocol;
}

const pingTimer = pinger(() => nginx().url('/ping'));

async function lag(reset = false): Promise<{ cpu_ms: number; wall_ms: number; ticks: number }> {
  return JSON.parse((await http(nginx().url(`/lag${reset ? '?reset=1' : ''}`))).body.toString('utf8'));
}

beforeAll(async () => {
  workerPid = nginx().workerPids()[0];
  // the coroutine whose local table would make a 300 MB answer at the largest limits
  held.push(await new Promise<ClientRequest>((resolve, reject) => {
    const req = request(nginx().url('/park/big'), { agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('error', () => undefined);
      resolve(req);
    });
    req.on('error', reject);
    req.end();
  }));
  const a = await session();
  const r = await a.request('Lua.getCoroutines', { frames: 8 });
  const big = r.result.coroutines.find((c: any) => c.frames.some((f: any) => f.function === 'hold_big'));
  expect(big, 'the parked coroutine').toBeTruthy();
  vars.coroutine = String(big.id);
  logOffset = nginx().errorLog().length;
});

afterAll(async () => {
  await pingTimer.close();
  for (const r of held) r.destroy();
  agent?.close();
  if (rows.length) {
    const header = ['case', 'outcome', 'worst /ping ms', 'worst hold ms (cpu)', '(wall)'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
    console.log([line(header), ...rows.map(line)].join('\n'));
  }
  rmSync(TMP, { recursive: true, force: true });
});

describe('hostile frames', () => {
  it('the corpus has at least 60 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });

  it.each(cases.map((c) => [`${c.file}: ${c.name}`, c] as const))('%s', async (_name, c) => {
    const name = `${c.file.replace(/\.json$/, '')}: ${c.name}`;
    const bound = c.hold_ms ?? HOLD_MS;
    for (let attempt = 1; ; attempt++) {
      const r = await runCase(c);
      rows.push([name + (attempt > 1 ? ` (attempt ${attempt})` : ''), r.seen, r.pinged.worst.toFixed(1), r.hold.cpu_ms.toFixed(2), r.hold.wall_ms.toFixed(1)]);
      expect(r.pinged.failures, '/ping failures').toEqual([]);
      expect(r.pinged.n, '/ping answered during the case').toBeGreaterThan(0);
      // One hold over the bound may be the VM's own work landing in the case's window (a GC
      // step, a burst of trace compiles for the fixture's /ping): the case runs again; a case
      // that holds the loop itself does so every time.
      if (r.hold.cpu_ms >= bound && attempt < 3) continue;
      expect(r.hold.cpu_ms, `longest hold of the event loop (CPU ms)${c.why ? `; ${c.why}` : ''}`).toBeLessThan(bound);
      // A slow /ping while the worker held its loop no longer than allowed: the OS ran
      // something else (a loaded 2-core machine); the case runs again.
      if (r.pinged.worst >= PING_MS && attempt < 3) continue;
      expect(r.pinged.worst, 'worst /ping ms').toBeLessThan(PING_MS);
      break;
    }
  });
});

interface CaseRun { seen: string; pinged: Pinged; hold: { cpu_ms: number; wall_ms: number } }

async function runCase(c: Case): Promise<CaseRun> {
  const a = await session();
  const before = await protocolCounts();
  const steps = prepare(c.steps);
  a.frames.length = 0;
  const pings0 = a.pings;
  await lag(true);
  const ping = await pingTimer.start();
  let pinged: Pinged | undefined;
  try {
    await run(a, steps);
    for (const e of c.expect ?? []) {
      const want = e.count ?? 1;
      await until(() => a.frames.filter((f) => matches(f, e)).length >= want, 20_000,
        () => `${want} x ${JSON.stringify(e)}; got ${outcome(a.frames, a.closed, 0)}: ${JSON.stringify(a.frames.slice(-2)).slice(0, 400)}`);
    }
    if (c.pings) await until(() => a.pings - pings0 >= c.pings!, 20_000, () => `${c.pings} pings back (got ${a.pings - pings0})`);
    if (c.closed) await a.waitClosed(10_000);
    else {
      // the session goes on: the reader answers a ping request
      const p = await a.request('Agent.ping');
      expect(p.result).toEqual({});
    }
  } finally {
    pinged = await ping.stop();
  }
  const seen = outcome(a.frames, a.closed, a.pings - pings0 > 1 ? a.pings - pings0 : 0);
  const hold = await lag();
  if (c.after) await run(await session(), prepare(c.after));
  // (a stats request queues behind whatever the case left in the server's queue)
  const after = await protocolCounts();
  for (const [k, n] of Object.entries(c.counts ?? {})) expect(after[k]! - before[k]!, `protocol counter ${k}`).toBe(n);
  expect(a.garbage, 'frames from the agent that are not JSON').toEqual([]);
  expect(nginx().workerPids()).toEqual([workerPid]);
  const log = nginx().errorLog().slice(logOffset);
  logOffset += log.length;
  expect(log.split('\n').filter((l) => /\[(alert|crit|emerg)\]|signal \d+|exited on signal/.test(l))).toEqual([]);
  return { seen, pinged, hold };
}

// --- the parameter declarations against the descriptor ---------------------------------------

interface Param { name: string; type?: string; $ref?: string; optional?: boolean; [k: string]: unknown }

const AGENT_DOMAINS = ['Agent', 'Lua', 'FFI', 'Debugger'];
const LIMITS = ['minimum', 'exclusiveMinimum', 'maximum', 'clamp', 'minLength', 'maxLength', 'maxExpressions'];

function norm(p: Param, domain: string): Record<string, unknown> {
  const o: Record<string, unknown> = { name: p.name, optional: Boolean(p.optional) };
  if (p.$ref) o.$ref = p.$ref.includes('.') ? p.$ref : `${domain}.${p.$ref}`;
  else o.type = p.type;
  for (const k of LIMITS) if (p[k] !== undefined) o[k] = p[k];
  return o;
}

describe('the agent\'s parameter declarations', () => {
  it('match probe/protocol.json: every command of the agent\'s domains, its params, types and limits', async () => {
    const schema = JSON.parse((await http(nginx().url('/schema'))).body.toString('utf8')) as
      { commands: Record<string, Param[] | Record<string, never>>; types: Record<string, Param[]> };
    const desc = JSON.parse(readFileSync(new URL('../probe/protocol.json', import.meta.url), 'utf8'));
    const want: Record<string, unknown[]> = {};
    const types: Record<string, unknown[]> = {};
    for (const d of desc.domains.filter((x: any) => AGENT_DOMAINS.includes(x.domain))) {
      for (const c of d.commands ?? []) {
        want[`${d.domain}.${c.name}`] = (c.parameters ?? []).map((p: Param) => norm(p, d.domain));
        for (const p of c.parameters ?? []) {
          if (!p.$ref) continue;
          const id = p.$ref.includes('.') ? p.$ref : `${d.domain}.${p.$ref}`;
          const [dom, name] = id.split('.');
          const t = desc.domains.find((x: any) => x.domain === dom).types.find((x: any) => x.id === name);
          types[id] = t.properties.map((q: Param) => norm(q, dom!));
        }
      }
    }
    const got = Object.fromEntries(Object.entries(schema.commands).map(([m, ps]) =>
      [m, (Array.isArray(ps) ? ps : []).map((p) => norm(p, m.split('.')[0]!))]));
    const gotTypes = Object.fromEntries(Object.entries(schema.types).map(([t, ps]) => [t, ps.map((p) => norm(p, t.split('.')[0]!))]));
    expect(got).toEqual(want);
    expect(gotTypes).toEqual(types);
  });

  it('every declared command is served: none answers "unknown method"', async () => {
    const a = await session();
    const desc = JSON.parse(readFileSync(new URL('../probe/protocol.json', import.meta.url), 'utf8'));
    for (const d of desc.domains.filter((x: any) => AGENT_DOMAINS.includes(x.domain))) {
      for (const c of d.commands ?? []) {
        if (c.name === 'detach') continue;
        const r = await a.request(`${d.domain}.${c.name}`, { id: 987654 });
        expect(r.error?.code, `${d.domain}.${c.name}`).not.toBe(-32601);
      }
    }
  });
});

// --- the CLI: escaped client text, held workers ------------------------------------------------

stopCliAfterEach();

const LOGPOINT = readFileSync(join(FIXTURE_LUA, 'hostile_app.lua'), 'utf8').split('\n').findIndex((l) => l.includes('-- LOGPOINT')) + 1;
// What a terminal acts on, but newline.
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;
// A User-Agent that retitles the window, clears the screen, starts a C1 CSI and reverses text.
const UA = '\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eevil';

/** One request on a raw socket: the header value goes out as its UTF-8 bytes, ESC and all
 * (Node's HTTP client refuses control characters in headers). */
function rawGet(port: number, path: string, ua: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
    sock.write(Buffer.concat([Buffer.from(`GET ${path} HTTP/1.0\r\nHost: x\r\nUser-Agent: `), Buffer.from(ua, 'utf8'), Buffer.from('\r\n\r\n')]));
  });
}

describe('the CLI against hostile text and held workers', () => {
  const RUN2 = join(TMP, 'run2');
  const ng = useNginx({ workers: 2, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN2 }, http: HOSTILE_HTTP });
  const held: RawAgent[] = [];
  afterAll(() => {
    for (const h of held) h.close();
  });

  async function logpoint(json: boolean): Promise<string> {
    const cli = startCli(['breakpoint', String(ng().masterPid), `hostile_app.lua:${LOGPOINT}`, '--log', 'ua={ngx.var.http_user_agent} uri={ngx.var.uri}',
      '--count', '1', '--run-dir', RUN2, ...(json ? ['--json'] : ['--wide'])]);
    await waitFor(() => (cli.out().match(/armed on worker|"event":"armed"/g) ?? []).length === 2,
      { timeout: 15_000, what: `armed on both workers; out: ${cli.out()} err: ${cli.err()}` });
    let done = false;
    void cli.exited.then(() => (done = true));
    for (let i = 0; i < 200 && !done; i++) {
      await rawGet(ng().port, '/logme/%1b[31mred%e2%80%ae', UA);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await cli.exited, `stderr: ${cli.err()}`).toBe(0);
    return cli.out();
  }

  it('a logpoint prints a client\'s User-Agent and URI escaped, nothing a terminal acts on', async () => {
    const out = await logpoint(false);
    const hit = out.split('\n').find((l) => l.startsWith('[hit bp'));
    expect(hit, out).toBeDefined();
    expect(hit).toContain('ua=\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u{202e}evil');
    expect(hit).toContain('uri=/logme/\\x1b[31mred\\u{202e}');
    for (const line of out.split('\n')) expect(line).not.toMatch(CONTROL);
  });

  it('--json keeps the text as it was (JSON escapes), still nothing raw on the terminal', async () => {
    const out = await logpoint(true);
    for (const line of out.split('\n')) expect(line).not.toMatch(CONTROL);
    const hit = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((e) => e.event === 'hit');
    expect(hit.message).toBe(`ua=${UA} uri=/logme/\x1b[31mred\u202e`);
  });

  it('stack and coroutines on a worker another session holds say so, and by whom; not "no agent"', async () => {
    const [a, b] = ng().workerPids().sort((x, y) => x - y);
    held.push(await waitFor(() => RawAgent.attach(RUN2, a!, 2_000), { timeout: 15_000, what: `a session with worker ${a}` }));
    const stack = await runCli(['stack', String(a), '1', '--run-dir', RUN2]);
    expect(stack.status).toBe(1);
    expect(oneLineError(stack)).toMatch(new RegExp(`^nffi-inspect: worker ${a} is held by another session: probe pid ${process.pid} \\(.+\\); its agent serves one session at a time`));
    expect(stack.stderr).not.toMatch(/no agent|nginx\.conf/);
    // --all: worker b's only coroutines may be pending timers and dead threads, hidden by default
    const cos = await runCli(['coroutines', String(ng().masterPid), '--all', '--run-dir', RUN2]);
    expect(cos.status, cos.stderr).toBe(0);
    expect(cos.stdout).toContain(`worker ${a}: not attached: worker ${a} is held by another session: probe pid ${process.pid}`);
    expect(cos.stdout).toMatch(new RegExp(`^ *${b} `, 'm'));
  });

  it('breakpoint MASTER names the worker it could not reach, removes the breakpoint and exits 1; --partial goes on', async () => {
    const [a, b] = ng().workerPids().sort((x, y) => x - y);
    expect(held.length, 'worker a held by the previous test').toBe(1);
    const r = await runCli(['breakpoint', String(ng().masterPid), `hostile_app.lua:${LOGPOINT}`, '--timeout', '15s', '--run-dir', RUN2], { timeout: 30_000 });
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^nffi-inspect: bp 1 not set on worker ${a}: worker ${a} is held by another session: probe pid ${process.pid}`));
    expect(lines.at(-1)).toBe(`nffi-inspect: bp 1 removed: not set on worker ${a} (--partial goes on with the others)`);
    expect(r.stdout).toMatch(new RegExp(`^bp 1 armed on worker ${b} `, 'm'));
    // gone from the worker it did reach
    const probe = await waitFor(() => RawAgent.attach(RUN2, b!, 2_000), { timeout: 15_000, what: `a session with worker ${b}` });
    expect((await probe.request('Debugger.getBreakpoints')).result.breakpoints).toEqual([]);
    probe.close();

    const p = await runCli(['breakpoint', String(ng().masterPid), `hostile_app.lua:${LOGPOINT}`, '--partial', '--timeout', '1s', '--run-dir', RUN2], { timeout: 30_000 });
    expect(p.status, p.stderr).toBe(0);
    expect(p.stderr).toMatch(new RegExp(`^nffi-inspect: bp 1 not set on worker ${a}: worker ${a} is held by another session`));
    expect(p.stdout).toMatch(/^bp 1 ended \(timeout\) after 0 hits$/m);
  });
});
