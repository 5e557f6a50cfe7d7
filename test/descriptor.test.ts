// probe/protocol.json against what the agent really serves and sends (issue 12, a tight
// descriptor), on a real nginx (1 worker as nobody) with coroutines parked in every wait kind,
// nffi runtimes with a task in flight, and line, logpoint and task breakpoints with hits:
// - the methods the agent dispatches (its handler table, read from the running worker, and
//   what its reader answers itself) are the commands of the domains it serves;
// - every answer to every agent method, and every event the agent sends, holds only declared
//   fields, every field that is not optional, each of its declared type
//   (test/harness/protocol-check.ts); the same answers through a probe Session too.
import type { ClientRequest } from 'node:http';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../probe/session.js';
import { loadDescriptor } from '../scripts/gen-protocol-types.js';
import { AgentClient, AgentError } from './harness/agent-client.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';
import { holdRequest } from './harness/park-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { ProtocolCheck } from './harness/protocol-check.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-descriptor-test-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');

const HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
}

server {
    listen 127.0.0.1:$PORT;

    location /park/ {
        content_by_lua_block { require("park_app").route() }
    }

    location / {
        content_by_lua_block { require("descriptor_app").route() }
    }
}
`;

const nginx = useNginx({
  workers: 1,
  http: HTTP,
  luaPath: [FIXTURE_LUA],
  env: { NFFI_INSPECT_RUN_DIR: RUN_DIR, PARK_HOLD_S: '30' },
});

const desc = loadDescriptor();
const check = new ProtocolCheck(desc);
/** Domains the probe serves itself (probe/session.ts, probe/serve-ws.ts); the agent serves the rest. */
const PROBE_DOMAINS = ['Target'];
const AGENT_DOMAINS = desc.domains.map((d) => d.domain).filter((d) => !PROBE_DOMAINS.includes(d));
/** Commands the agent's reader answers itself, outside the handler table (link.lua's dispatch). */
const READER_COMMANDS = ['Agent.detach'];
/**
 * Declared fields this run may never see, and why. Any other declared field that no answer or
 * event carried is a declaration the agent does not keep (a stale or misspelt name).
 */
const MAY_BE_ABSENT: Record<string, string> = {
  'Lua.Frame.original': 'probe-added (source maps)',
  'Debugger.Breakpoint.original': 'probe-added (source maps)',
  'Debugger.hit params.original': 'probe-added (source maps)',
  'Debugger.OriginalPosition.source': 'probe-added (source maps)',
  'Debugger.OriginalPosition.line': 'probe-added (source maps)',
  'Debugger.armed params.pid': 'probe-added on serve\'s sockets',
  'Debugger.removed params.pid': 'probe-added on serve\'s sockets',
  'Debugger.error params.pid': 'probe-added on serve\'s sockets',
  'Debugger.dropped params.pid': 'probe-added on serve\'s sockets',
  'Debugger.armed params.nearest': 'probe-added (from a pending breakpoint\'s setBreakpoint answer)',
  'Debugger.armed params.runtimes': 'probe-added (from a task breakpoint\'s setBreakpoint answer)',
  'Lua.getCoroutines result.truncated': 'past 20,000 coroutines',
  'Debugger.BreakpointMode.reason': 'none on a machine where watching works',
  'Debugger.TaskHit.latency_ms': 'none from a libnffi built without instrumentation',
  'FFI.Task.age_ms': 'none from a libnffi built without instrumentation',
};

const APP = join(FIXTURE_LUA, 'descriptor_app.lua');
const BREAK = readFileSync(APP, 'utf8').split('\n').findIndex((l) => l.includes('-- BREAK')) + 1;
const BEFORE_TARGET = readFileSync(APP, 'utf8').split('\n').findIndex((l) => l.startsWith('local function target')); // blank line above it

const held: ClientRequest[] = [];
const clients: AgentClient[] = [];
afterAll(() => {
  for (const r of held) r.destroy();
  for (const c of clients) c.close();
  rmSync(TMP, { recursive: true, force: true });
});

/** A request that parks (park_app.lua); resolves once its headers arrive. */
const park = (path: string): Promise<void> => holdRequest(nginx().url(path), held);

async function get(path: string): Promise<string> {
  const res = await http(nginx().url(path), { timeout: 10_000 });
  expect(res.status, path).toBe(200);
  return res.body.toString('utf8');
}

describe('the agent\'s methods', () => {
  it('its handler table and its reader answer exactly the descriptor\'s commands of the agent\'s domains', async () => {
    const { handlers } = JSON.parse(await get('/handlers')) as { handlers: string[] };
    expect(handlers.length).toBeGreaterThan(0);
    // the reader's own answers, as link.lua's dispatch names them
    const link = readFileSync(new URL('../lua/nffi/inspect/link.lua', import.meta.url), 'utf8');
    const byReader = [...link.matchAll(/method == "(\w+\.\w+)"/g)].map((m) => m[1]!);
    for (const m of READER_COMMANDS) expect(byReader).toContain(m);
    // anything else the reader answers by name is an event it answers in kind (Agent.ping)
    const events = desc.domains.flatMap((d) => (d.events ?? []).map((e) => `${d.domain}.${e.name}`));
    expect(byReader.filter((m) => !READER_COMMANDS.includes(m) && !events.includes(m))).toEqual([]);
    const served = [...handlers, ...READER_COMMANDS].sort();
    const declared = desc.domains.filter((d) => AGENT_DOMAINS.includes(d.domain))
      .flatMap((d) => (d.commands ?? []).map((c) => `${d.domain}.${c.name}`)).sort();
    expect(served).toEqual(declared);
    expect(AGENT_DOMAINS.length).toBeGreaterThan(0);
  });
});

describe('every answer and event of the agent, against the descriptor', () => {
  const problems: string[] = [];
  const seen: string[] = [];
  const result = (method: string, value: unknown): void => {
    seen.push(method);
    problems.push(...check.result(method, value));
  };

  it('every method, with coroutines, tasks and breakpoints to show', async () => {
    // something in every wait kind, a task in flight, a table-rich frame
    for (const p of ['sleep', 'cosocket', 'sema', 'thread', 'timer', 'ffi', 'user', 'locals', 'later', 'timerthread']) {
      await park(`/park/${p}`);
    }
    await get('/echo?body=warm');
    await get('/fail?body=warm');
    const c = await AgentClient.attach({ runDir: RUN_DIR, pid: nginx().workerPids()[0]! });
    clients.push(c);

    result('Agent.getStats', await c.request('Agent.getStats'));

    const cos = await c.request('Lua.getCoroutines', { frames: 8 });
    result('Lua.getCoroutines', cos);
    result('Lua.getCoroutines', await c.request('Lua.getCoroutines', {}));
    // from the first frame of application code: the parked ones leave C and ngx/*.lua out
    result('Lua.getCoroutines', await c.request('Lua.getCoroutines', { frames: 1, skip: 'ngx/*.lua,resty/core/**,nffi/**' }));
    // a walk kept as a base (epoch), then one built on it (base, gone, what changed)
    const kept = await c.request('Lua.getCoroutines', { frames: 1, since: 0 });
    result('Lua.getCoroutines', kept);
    result('Lua.getCoroutines', await c.request('Lua.getCoroutines', { frames: 1, since: kept.epoch }));
    let stacks = 0;
    for (const co of cos.coroutines) {
      const st = await c.request('Lua.getStack', { coroutine: co.id, locals: true, depth: 3 }).catch((e: AgentError) => e);
      if (st instanceof AgentError) {
        expect(st.code, `Lua.getStack ${co.id}: ${st.message}`).toBe(-32602);
        continue;
      }
      result('Lua.getStack', st);
      stacks++;
    }
    expect(stacks).toBeGreaterThan(5);
    const parkedLocals = cos.coroutines.find((co: any) => co.frames.some((f: any) => f.function === 'hold_locals'));
    expect(parkedLocals).toBeDefined();
    result('Lua.getStack', await c.request('Lua.getStack', { coroutine: parkedLocals.id }));

    await waitFor(async () => (await c.request('FFI.getTasks', {})).tasks.length > 0, { what: 'the parked task' });
    result('FFI.getRuntimes', await c.request('FFI.getRuntimes'));
    const tasks = await c.request('FFI.getTasks', {});
    expect(tasks.tasks[0].coroutine).toBeDefined();
    result('FFI.getTasks', tasks);
    const page = await c.request('FFI.getTasks', { older_than_ms: 0, max: 0 });
    expect(page.truncated).toBe(true);
    result('FFI.getTasks', page);
    result('FFI.getTasks', await c.request('FFI.getTasks', { after_id: tasks.tasks[0].id, total: false }));
    // each waiter from its application code, with the request it serves
    result('FFI.getTasks', await c.request('FFI.getTasks', { skip: 'ngx/*.lua,resty/core/**,nffi/**,nffi.*' }));

    // breakpoints: a snapshot, a logpoint, one moved to the next line with code, one pending,
    // one whose condition fails, one past its rate until its count, task breakpoints
    const set = async (id: number, spec: object) => {
      const r = await c.request('Debugger.setBreakpoint', { spec, id });
      result('Debugger.setBreakpoint', r);
      return r;
    };
    await set(1, { url: 'descriptor_app.lua', line: BREAK, rate: 1e6 });
    await set(2, { url: 'descriptor_app.lua', line: BREAK, log: 'n={n} s={s} long={#long}', rate: 1e6 });
    const moved = await set(3, { url: 'descriptor_app.lua', line: BEFORE_TARGET, timeout_ms: 60_000 });
    expect(moved.moved_from).toBe(BEFORE_TARGET);
    expect((await set(4, { url: 'not_loaded_yet.lua', line: 1 })).breakpoint.state).toBe('pending');
    await set(5, { url: 'descriptor_app.lua', line: BREAK, condition: 's < 1' });
    await set(6, { url: 'descriptor_app.lua', line: BREAK, count: 4, rate: 0.01 });
    await set(7, { url: 'ffi:echo.echo', rate: 1e6 });
    await set(8, { url: 'ffi:fail.*', log: 'rc={rc}', rate: 1e6 });
    // no runtime of that name: the answer lists the loaded ones
    expect((await set(9, { url: 'ffi:nosuch.*', timeout_ms: 60_000 })).runtimes).toEqual(expect.arrayContaining(['echo']));
    result('Debugger.getBreakpoints', await c.request('Debugger.getBreakpoints'));

    for (let n = 1; n <= 4; n++) await get(`/hit?n=${n}`);
    await get('/echo?body=hello');
    await get('/fail?body=oops');

    const ev = (method: string, pred: (p: any) => boolean = () => true): boolean =>
      c.events.some((e) => e.method === method && pred(e.params));
    await waitFor(() => ev('Debugger.hit', (p) => p.id === 1 && p.locals)
      && ev('Debugger.hit', (p) => p.id === 2 && p.message)
      && ev('Debugger.error', (p) => p.id === 5) && ev('Debugger.removed', (p) => p.id === 5 && p.reason === 'error')
      && ev('Debugger.dropped', (p) => p.id === 6) && ev('Debugger.removed', (p) => p.id === 6 && p.reason === 'count')
      && ev('Debugger.hit', (p) => p.id === 7 && p.task?.phase === 'enqueue')
      && ev('Debugger.hit', (p) => p.id === 7 && p.task?.phase === 'resume')
      && ev('Debugger.hit', (p) => p.id === 8 && p.task?.phase === 'resume' && p.task.rc !== undefined),
    { timeout: 5_000, what: 'hits, errors, drops and removals of every breakpoint' });

    result('Debugger.removeBreakpoint', await c.request('Debugger.removeBreakpoint', { id: 1 }));
    result('Debugger.removeBreakpoint', await c.request('Debugger.removeBreakpoint', { id: 7 }));
    await waitFor(() => ev('Debugger.removed', (p) => p.id === 1 && p.reason === 'deleted'), { what: 'removed: deleted' });
    result('Debugger.getScripts', await c.request('Debugger.getScripts'));
    result('Agent.getStats', await c.request('Agent.getStats'));

    // a frame the agent cannot answer by id: an Agent.protocolError event
    c.send([1]);
    await waitFor(() => ev('Agent.protocolError'), { what: 'Agent.protocolError' });
    await waitFor(() => ev('Agent.ping'), { what: 'a ping from the agent' });

    problems.push(...check.event('Agent.hello', c.hello));
    for (const e of c.events) {
      seen.push(e.method);
      problems.push(...check.event(e.method, e.params));
    }
    result('Agent.detach', await c.request('Agent.detach'));

    const wanted = [...desc.domains.filter((d) => AGENT_DOMAINS.includes(d.domain))
      .flatMap((d) => (d.commands ?? []).map((x) => `${d.domain}.${x.name}`)),
    'Debugger.hit', 'Debugger.armed', 'Debugger.removed', 'Debugger.dropped', 'Debugger.error',
    'Agent.protocolError', 'Agent.ping'];
    expect(wanted.filter((m) => !seen.includes(m)), 'methods and events never checked').toEqual([]);
    expect(problems).toEqual([]);
    expect(check.unsent(AGENT_DOMAINS).filter((f) => !(f in MAY_BE_ABSENT)), 'declared fields the agent never sent').toEqual([]);
  });

  it('the same answers through a probe Session', async () => {
    for (const c of clients) c.close(); // a session of the test above, had it failed half-way
    const pid = nginx().workerPids()[0]!;
    const s = await Session.open(pid, { runDir: RUN_DIR });
    try {
      const out: string[] = [];
      const call = async (method: string, params?: object): Promise<any> => {
        const r = await s.call(pid, method, params);
        out.push(...check.result(method, r));
        return r;
      };
      out.push(...check.result('Target.getTargets', { targets: s.targets() }));
      await call('Agent.getStats');
      const cos = await call('Lua.getCoroutines', { frames: 3 });
      const parked = cos.coroutines.find((co: any) => co.frames.some((f: any) => f.function === 'hold_locals'));
      await call('Lua.getStack', { coroutine: parked.id, locals: true });
      await call('FFI.getRuntimes');
      await call('FFI.getTasks', {});
      await call('Debugger.setBreakpoint', { spec: { url: 'descriptor_app.lua', line: BREAK } });
      await call('Debugger.getBreakpoints');
      await call('Debugger.getScripts');
      expect(out).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
