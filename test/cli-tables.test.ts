// The CLI's tables at 80 columns and --wide: queue (rates beside totals with --watch),
// coroutines (summary, hidden rows, --frames), tasks, workers, ps (masters by prefix and
// configuration file), breakpoints; and where a master's prefix and configuration come from.
import { describe, expect, it } from 'vitest';
import type { HostMaster } from '../client/host.js';
import { formatBreakpoints } from '../cli/format/breakpoints.js';
import { formatCoroutines, summaryLines } from '../cli/format/coroutines.js';
import { formatPs } from '../cli/format/ps.js';
import { formatQueue, queueJson } from '../cli/format/queue.js';
import { cellWidth } from '../cli/format/table.js';
import { formatTasks } from '../cli/format/tasks.js';
import { formatWorkers } from '../cli/format/workers.js';
import { builtInPlaces, masterArgs, masterPlace } from '../probe/procs.js';
import { coroutineRow, filterCoroutines, type WorkerCoroutines } from '../store/coroutines.js';
import type { RuntimeView } from '../store/queue.js';
import type { Lua } from '../probe/protocol-types.js';

const widest = (s: string): number => Math.max(...s.split('\n').map(cellWidth));
const LAT = (p99: number) => ({ p50: p99 / 2, p99, max: p99, count: 10 });

const runtime = (name: string, over: Partial<RuntimeView> = {}): RuntimeView => ({
  name, depth: 3, in_flight: 2, enqueued: 123456, completed: 123400, timeouts: 4, rejected: 0,
  latency_ms: { queue: LAT(1.5), service: LAT(40), wakeup: LAT(0.2), total: LAT(42) }, rates: { enqueued: 250.5, completed: 249 }, ...over,
});
const QUEUE = [{ pid: 40001, runtimes: [runtime('echo'), runtime('slow_backend', { depth: 1200 })] }, { pid: 40002, runtimes: [runtime('pool', { rates: null })] }];

const APP = { function: 'handlers.slow', source: '/srv/app/lua/handlers.lua', line: 41, what: 'Lua' as const };
const co = (id: number, over: Partial<Lua.Coroutine> = {}): Lua.Coroutine => ({
  id, kind: 'request', state: 'suspended', wait: { kind: 'ffi', task_id: 1000 + id },
  frames: [{ function: 'co_yield', source: '=[C]', line: -1, what: 'C' }, { function: 'wait', source: '/usr/share/lua/5.1/ngx/semaphore.lua', line: 160, what: 'Lua' }, APP,
    { function: 'handle', source: '/srv/app/lua/main.lua', line: 9, what: 'Lua' }],
  request: { method: 'GET', uri: `/api/slow?ms=200&user=${'x'.repeat(40)}` }, ...over,
});
const COROUTINES: WorkerCoroutines[] = [{
  pid: 40001,
  coroutines: [
    co(3), co(1),
    co(4, { kind: 'timer', wait: { kind: 'unknown' }, frames: [], request: undefined }),
    co(5, { kind: 'thread', state: 'dead', wait: undefined, frames: [], request: undefined }),
    co(6, { kind: 'timer', wait: { kind: 'cosocket', detail: 'receiveany' }, request: undefined }),
  ].map((c) => coroutineRow(c)).sort((a, b) => a.id - b.id),
}];

describe('every table fits 80 columns by default and shows everything with --wide', () => {
  const tables: [string, (width?: number) => string, string[]][] = [
    ['queue', (width) => formatQueue(QUEUE, width ? { width } : {}), ['service p99', 'wakeup p99', 'rejected']],
    ['queue --watch', (width) => formatQueue(QUEUE, { rates: true, ...(width ? { width } : {}) }), ['enq/s', 'done/s', 'enqueued', 'wakeup p99']],
    ['coroutines', (width) => formatCoroutines(filterCoroutines(COROUTINES, { all: true }), width ? { width } : {}), ['kind', '/srv/app/lua/handlers.lua:41 handlers.slow', 'x'.repeat(40)]],
    ['tasks', (width) => formatTasks([{ pid: 40001, total: 1, truncated: false, tasks: [{ id: 77, runtime: 'slow_backend', method: 'fetch', state: 'polled', age_ms: 250, req_len: 2048, req_preview: 'x', coroutine: { id: 3, frames: coroutineRow(co(3)).frames, top_frame_index: 2, request: co(3).request! } }] }], width ? { width } : {}), ['req bytes', 'co', `user=${'x'.repeat(40)}`]],
    ['workers', (width) => formatWorkers([{ pid: 40001, worker_id: 0, user: 'www-data', versions: { nginx: '1.22.1', ngx_lua: '0.10.23', luajit: 'LuaJIT 2.1.0-beta3', agent: '0.1.0' }, jit: { enabled: true, flags: [] }, breakpoint_mode: { mode: 'call hook', reason: 'traps not delivered on this machine' } }], width ? { width } : {}), ['luajit', 'agent']],
    ['breakpoints', (width) => formatBreakpoints([{ id: 1, spec: { url: '/srv/app/lua/handlers/very/deep/path/handlers.lua', line: 41, condition: `user == "${'b'.repeat(50)}"` }, hits: 12, dropped: 0, workers: [{ pid: 40001, state: 'armed' }, { pid: 40002, state: 'armed' }] } as any], width ? { width } : {}), ['b'.repeat(50)]],
  ];

  it.each(tables)('%s', (_name, render, wideOnly) => {
    const narrow = render(80);
    const wide = render();
    expect(widest(narrow), narrow).toBeLessThanOrEqual(80);
    for (const text of wideOnly) expect(wide).toContain(text);
    if (wideOnly.length > 2) expect(widest(wide)).toBeGreaterThan(80);
  });
});

describe('queue', () => {
  it('--watch: the rates per second beside the totals; - before the second sample', () => {
    const lines = formatQueue(QUEUE, { rates: true }).split('\n');
    expect(lines[0]).toMatch(/enqueued +enq\/s +completed +done\/s/);
    expect(lines[1]).toMatch(/ 123456 +251 +123400 +249 /);
    expect(lines[3]).toMatch(/ 123456 +- +123400 +- /);
    expect(formatQueue(QUEUE).split('\n')[0]).not.toContain('enq/s');
  });

  it('a runtime that is not instrumented shows - for what it does not count, not 0', () => {
    const quiet = runtime('quiet', { enqueued: 0, completed: 0, timeouts: 0, rejected: 0, latency_sample_every: 0, rates: null });
    const lines = formatQueue([{ pid: 40003, runtimes: [quiet, runtime('echo', { latency_sample_every: 64 })] }], { rates: true, width: 200 }).split('\n');
    expect(lines[0]).toMatch(/enqueued +enq\/s +completed +done\/s +timeouts +rejected/);
    expect(lines[1]).toMatch(/ quiet +3 +2 +- +- +- +- +- +- /);
    expect(lines[2]).toMatch(/ echo +3 +2 +123456 +251 +123400 +249 +4 +0 /);
  });

  it('--watch --json: rates in each line; one sample has none', () => {
    const doc = queueJson(QUEUE, { rates: true }) as { workers: any[] };
    expect(doc.workers[0].runtimes[0].rates).toEqual({ enqueued_per_s: 250.5, completed_per_s: 249 });
    expect(doc.workers[1].runtimes[0].rates).toBeNull();
    expect((queueJson(QUEUE) as { workers: any[] }).workers[0].runtimes[0]).not.toHaveProperty('rates');
  });

  it('colours depth and p99 past the thresholds on a terminal only', () => {
    const painted = formatQueue(QUEUE, { color: true, width: 200 });
    expect(painted).toContain('\x1b[31m1200\x1b[0m');
    expect(painted).toContain('\x1b[33m42.0\x1b[0m'.replace('42.0', '42.0'));
    expect(formatQueue(QUEUE, { width: 200 })).not.toContain('\x1b[');
  });
});

describe('coroutines', () => {
  it('pending timers and dead threads are hidden and counted; a summary per kind, state and wait', () => {
    const shown = filterCoroutines(COROUTINES);
    expect(shown[0]!.coroutines.map((c) => c.id)).toEqual([1, 3, 6]);
    expect(summaryLines(shown, 80)).toEqual([
      '3 coroutines: request 2, timer 1 · suspended 3 · waiting on ffi 2, cosocket 1',
      'hidden: 1 pending timer, 1 dead thread (--all shows them)',
    ]);
    const all = formatCoroutines(filterCoroutines(COROUTINES, { all: true }), { width: 80 });
    // at 80 columns the kind goes first (a request's row has its request)
    expect(all).toMatch(/ 4 +pending +- +- +-\n/);
    expect(all).toMatch(/ 5 +dead /);
    expect(formatCoroutines(filterCoroutines(COROUTINES, { all: true }))).toMatch(/ 4 +timer +pending +- +- +-\n/);
  });

  it.each<[string, Parameters<typeof filterCoroutines>[1], number[]]>([
    ['--kind timer', { kinds: ['timer'] }, [6]],
    ['--state dead shows the dead', { states: ['dead'] }, [5]],
    ['--state pending shows the pending', { states: ['pending'] }, [4]],
    ['--wait cosocket', { waits: ['cosocket'] }, [6]],
    ['--wait none', { waits: ['none'], all: true }, [5]],
    ['--request is a case-insensitive substring', { request: 'API/SLOW' }, [1, 3]],
  ])('%s', (_name, filter, ids) => {
    expect(filterCoroutines(COROUTINES, filter)[0]!.coroutines.map((c) => c.id)).toEqual(ids);
  });

  it('the frame in application code in the table; --frames N adds the frames below it under the row', () => {
    const one = formatCoroutines(filterCoroutines(COROUTINES), { width: 80 }).split('\n');
    // the whole handler name at 80 columns: the path goes, the file, line and name stay
    expect(one[1]).toMatch(/ handlers\.lua:41 handlers\.slow$/);
    const three = formatCoroutines(filterCoroutines(COROUTINES, { kinds: ['request'] }), { width: 80, frames: 2 }).split('\n');
    expect(three.slice(1, 5)).toEqual([
      expect.stringMatching(/^ +40001 +1 /),
      '    #3 /srv/app/lua/main.lua:9 handle',
      expect.stringMatching(/^ +40001 +3 /),
      '    #3 /srv/app/lua/main.lua:9 handle',
    ]);
  });
});

describe('ps: each master by its prefix and configuration file', () => {
  const master = (pid: number, prefix: string, config: string): HostMaster => ({
    pid, user: 'root', prefix, config, workers: [{ pid: pid + 1, user: 'nobody', state: 'serving', agent: 'not checked' }, { pid: pid + 2, user: 'nobody', state: 'shutting down', agent: '-' }],
  });

  it('one line per master when it fits, prefix and config on lines of their own when not; says how to check agents', () => {
    const out = formatPs([master(100, '/srv/a/', '/srv/a/conf/nginx.conf'), master(200, `/srv/${'long/'.repeat(12)}`, `/etc/${'deep/'.repeat(14)}nginx.conf`)], { width: 80 });
    const lines = out.split('\n');
    expect(lines[0]).toBe('master 100 (root)  prefix /srv/a/  config /srv/a/conf/nginx.conf');
    expect(lines[1]).toMatch(/^ {2}worker +user +state +agent$/);
    expect(lines[2]).toMatch(/^ +101 +nobody +serving +not checked$/);
    expect(lines[3]).toMatch(/^ +102 +nobody +shutting down +-$/);
    expect(lines[4]).toBe('master 200 (root)');
    expect(lines[5]).toMatch(/^ {2}prefix \/srv\/long/);
    expect(lines[6]).toMatch(/^ {2}….*deep\/nginx\.conf$/);
    expect(lines.at(-1)).toContain('--agents');
    expect(widest(out)).toBeLessThanOrEqual(100);
  });

  it.each<[string, string, { prefix?: string; config?: string }]>([
    ['-p and -c', 'nginx: master process /usr/sbin/nginx -p /tmp/x/ -e logs/error.log -c conf/nginx.conf -g daemon off;', { prefix: '/tmp/x/', config: 'conf/nginx.conf' }],
    ['-c only, glued', 'nginx: master process nginx -c/etc/nginx/site.conf', { config: '/etc/nginx/site.conf' }],
    ['none', 'nginx: master process /usr/sbin/nginx', {}],
  ])('master args: %s', (_name, title, args) => expect(masterArgs(title)).toEqual(args));

  it.each<[string, string, { prefix: string | null; config: string | null }]>([
    ['a relative -c is in the -p prefix', 'nginx: master process nginx -p /tmp/x/ -c conf/n.conf', { prefix: '/tmp/x/', config: '/tmp/x/conf/n.conf' }],
    ['without -p, relative to the built-in configuration directory', 'nginx: master process nginx -c site.conf', { prefix: '/usr/share/nginx', config: '/etc/nginx/site.conf' }],
    ['nothing given: the built-in ones', 'nginx: master process /usr/sbin/nginx', { prefix: '/usr/share/nginx', config: '/etc/nginx/nginx.conf' }],
  ])('%s', (_name, title, place) => {
    expect(masterPlace(process.pid, title, () => ({ prefix: '/usr/share/nginx', config: '/etc/nginx/nginx.conf' }))).toEqual(place);
  });

  it('nginx -V is asked once per binary', () => {
    let runs = 0;
    const run = () => {
      runs++;
      return 'configure arguments: --with-cc-opt=-g --prefix=/opt/ngx --conf-path=/opt/ngx/conf/nginx.conf --http-log-path=/x';
    };
    expect(builtInPlaces('/opt/test-nginx-binary', run)).toEqual({ prefix: '/opt/ngx', config: '/opt/ngx/conf/nginx.conf' });
    builtInPlaces('/opt/test-nginx-binary', run);
    expect(runs).toBe(1);
  });
});
