// What code written for lua-resty-ffi (ngx.load_ffi) and lua-resty-nonblocking-ffi
// (ngx.load_nonblocking_ffi) gets back from nffi, value by value and counted as select('#', ...)
// counts them: real nginx (2 workers), the real binding, the example runtimes (echo, slow, fail,
// nb_echo) and test/fixtures/native/compat_rt.c, built here, for the answers the examples never
// give. Each row names what it mirrors upstream: kingluo/lua-resty-ffi's resty_ffi.lua (post(),
// unload(), ngx.load_ffi) and ngx_http_lua_ffi.c (ngx_http_lua_ffi_event_handler pushes three
// values and ngx_http_lua_ffi_resume resumes the caller with them); lua-resty-nonblocking-ffi is
// that repository before its rename (nonblocking_ffi.lua, ngx_http_lua_nonblocking_ffi.c), the
// same code under the older names. Rows marked nffi-only have no upstream counterpart.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './harness/cli.js';
import { useNginx } from './harness/nginx.js';
import { FIXTURE_LUA } from './harness/ffi-app.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-compat-'));
chmodSync(TMP, 0o755);   // workers run as nobody
const LIB = join(TMP, 'libnffi_compat.so');
const NOINIT_LIB = join(TMP, 'libnffi_compat_noinit.so');
const SRC = join(ROOT, 'test/fixtures/native/compat_rt.c');
for (const [out, defs] of [[LIB, []], [NOINIT_LIB, ['-DCOMPAT_NO_INIT']]] as const) {
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-pthread', ...defs, '-o', out, SRC], { stdio: ['ignore', 'pipe', 'pipe'] });
  chmodSync(out, 0o755);
}
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const COMPAT_HTTP = `
init_by_lua_block { require("compat_app").init() }

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("compat_app").route() }
    }
}
`;

const nginx = useNginx({
  workers: 2, http: COMPAT_HTTP, luaPath: [FIXTURE_LUA],
  env: { NFFI_COMPAT_LIB: LIB, NFFI_COMPAT_NOINIT_LIB: NOINIT_LIB },
});

/** One route's answer, fetched once for all the rows that read it. */
const answers = new Map<string, Promise<any>>();
function answer(route: string): Promise<any> {
  let p = answers.get(route);
  if (!p) {
    p = fetch(nginx().url(route)).then(async (res) => {
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${route}: ${res.status} ${text}`);
      return JSON.parse(text);
    });
    answers.set(route, p);
  }
  return p;
}

/** What compat_app.lua's pack(...) gives: select('#', ...), the values (null for nil), their types. */
interface Pack { n: number; v: unknown[]; t: string[] }

const str = (re: RegExp): unknown => expect.stringMatching(re);
/** A runtime object: packed as its type, 'table'. */
const RUNTIME = Symbol('runtime');

/** The pack a row expects: types follow from the values (null is nil, a matcher a string). */
function pack(...values: unknown[]): Pack {
  const v = values.map((x) => (x === RUNTIME ? 'table' : x));
  const t = values.map((x) => (x === null ? 'nil' : x === RUNTIME ? 'table' : typeof x === 'object' ? 'string' : typeof x));
  return { n: values.length, v, t };
}

// cjson encodes an empty table as {}: no values is an empty array here
const normal = (p: Pack): Pack => ({ ...p, v: Array.isArray(p.v) ? p.v : [], t: Array.isArray(p.t) ? p.t : [] });

interface Row {
  case: string;
  /** route, then the field of its answer that holds the pack ('' for the answer itself) */
  at: [string, string];
  expect: Pack;
  mirrors: string;
}

const FINISHED = 'task queue is finished';
// ffi.load's words (the dynamic linker's), after the place of the call when Lua code made it
const MISSING = str(/^(.*: )?libnffi_compat_nope\.so: cannot open shared object file: No such file or directory$/);
const FULL = 'post failed, queue full';

const ROWS: Row[] = [
  // calls: rt:method(req) yields until the C handler resumes it with three values
  { case: 'success', at: ['/success', ''], expect: pack(true, 'hello', null),
    mirrors: 'ffi_event_handler, rc 0: pushboolean(1), the response, pushnil; resumed with 3 values' },
  { case: 'nil request', at: ['/nilreq', ''], expect: pack(true, '', null),
    mirrors: 'post(): a nil req posts (NULL, 0); the runtime reads length 0' },
  { case: 'empty response ""', at: ['/empty', ''], expect: pack(true, '', null),
    mirrors: 'ffi_event_handler: rsp non-NULL, rsp_len 0: lua_pushstring(rsp)' },
  { case: 'NULL response, rc 0', at: ['/compat?req=null', ''], expect: pack(true, null, null),
    mirrors: 'ffi_event_handler: rsp NULL: pushnil' },
  { case: 'rsp_len 0 reads rsp as a C string', at: ['/compat?req=strlen', ''], expect: pack(true, 'abc', null),
    mirrors: 'ffi_event_handler: rsp_len 0: lua_pushstring(rsp), up to its first NUL' },
  { case: 'non-zero rc', at: ['/rc', ''], expect: pack(false, 7, 'error: boom'),
    mirrors: 'ffi_event_handler, rc != 0: pushboolean(0), pushinteger(rc), the response' },
  { case: 'non-zero rc, NULL response', at: ['/compat?req=rcnull', ''], expect: pack(false, 5, null),
    mirrors: 'ffi_event_handler, rc != 0: pushboolean(0), pushinteger(rc), pushnil' },
  { case: 'rt(req) through __call', at: ['/callable', ''], expect: pack(true, 'meta', null),
    mirrors: 'mt.__call = post: the runtime object is callable' },
  { case: 'queue full', at: ['/queuefull', 'fourth'], expect: pack(false, FULL),
    mirrors: 'post(): ngx_http_lua_ffi_task_post() ~= 0: return false, "post failed, queue full"' },
  { case: 'call after __unload', at: ['/unload', 'after'], expect: pack(false, FINISHED),
    mirrors: 'post(): self.finished: return false, "task queue is finished"' },
  { case: 'rt(req) after __unload', at: ['/unload', 'after_call'], expect: pack(false, FINISHED),
    mirrors: 'post() through __call, self.finished' },
  { case: 'rt:__unload() returns', at: ['/unload', 'unload'], expect: pack(),
    mirrors: 'unload(): returns nothing' },
  { case: 'a second __unload', at: ['/unload', 'unload_again'], expect: pack(),
    mirrors: 'unload(): a no-op once finished, returns nothing' },
  { case: 'a new load after __unload', at: ['/unload', 'reloaded'], expect: pack(true, 'y', null),
    mirrors: 'unload(): runtimes[key] = nil, so ngx.load_ffi starts a new runtime' },
  { case: 'opts.unpin: call, __unload, load again, call', at: ['/unpin', 'second'], expect: pack(true, 'v', null),
    mirrors: 'ngx.load_ffi: opts.unpin leaves the library unpinned (nffi: accepted, the library stays loaded)' },
  { case: 'timeout (nffi-only opts.timeout)', at: ['/timeout', ''], expect: pack(false, 'timeout'),
    mirrors: 'nffi-only; shaped like post()\'s own failures: false, then the error string' },
  { case: 'init fails on first use, loaded in init_by_lua (nffi-only)', at: ['/deferred', ''],
    expect: pack(false, 'runtime init failed with rc 7'),
    mirrors: 'nffi-only (lua-resty-ffi runs init in the master); shaped like post()\'s failures' },
  // loading
  { case: 'ngx.load_ffi', at: ['/load', 'first'], expect: pack(RUNTIME),
    mirrors: 'ngx.load_ffi: init rc 0: return the runtime table' },
  { case: 'ngx.load_ffi, init returns 7', at: ['/loadrc', 'ffi'], expect: pack(null, 7),
    mirrors: 'ngx.load_ffi: return nil, rc' },
  { case: 'ngx.load_nonblocking_ffi, init returns 7', at: ['/loadrc', 'nonblocking'], expect: pack(null, 7),
    mirrors: 'ngx.load_nonblocking_ffi (nonblocking_ffi.lua): return nil, rc' },
  { case: 'nffi.load, init returns 7 (nffi\'s own API)', at: ['/loadrc', 'nffi'], expect: pack(null, 'runtime init failed with rc 7'),
    mirrors: 'nffi-only API: nil and a message' },
  { case: 'pcall(ngx.load_ffi, missing library)', at: ['/loadmissing', 'ffi'],
    expect: pack(false, MISSING),
    mirrors: 'ngx.load_ffi: ffi.load(lib) raises' },
  { case: 'pcall(ngx.load_nonblocking_ffi, missing library)', at: ['/loadmissing', 'nonblocking'],
    expect: pack(false, MISSING),
    mirrors: 'ngx.load_nonblocking_ffi: ffi.load(lib) raises' },
  { case: 'pcall(nffi.load, missing library)', at: ['/loadmissing', 'nffi'],
    expect: pack(true, null, str(/^cannot load runtime library 'nffi_compat_nope': libnffi_compat_nope\.so: cannot open/)),
    mirrors: 'nffi-only API: nil and a message' },
  { case: 'pcall(ngx.load_ffi, library without an init)', at: ['/loadnosym', 'ffi'],
    expect: pack(false, str(/libnffi_compat_noinit\.so: undefined symbol: libffi_init$/)),
    mirrors: 'ngx.load_ffi: indexing handle.libffi_init raises the dynamic linker\'s error' },
  { case: 'pcall(ngx.load_nonblocking_ffi, library without an init)', at: ['/loadnosym', 'nonblocking'],
    expect: pack(false, str(/libnffi_compat_noinit\.so: undefined symbol: lib_nonblocking_ffi_init$/)),
    mirrors: 'ngx.load_nonblocking_ffi: indexing handle.lib_nonblocking_ffi_init raises' },
  { case: 'pcall(nffi.load, library without an init)', at: ['/loadnosym', 'nffi'],
    expect: pack(true, null, str(/^no libffi_init or lib_nonblocking_ffi_init in .*libnffi_compat_noinit\.so$/)),
    mirrors: 'nffi-only API: nil and a message' },
  { case: 'ngx.load_ffi calls libffi_init', at: ['/initsym', 'ffi'], expect: pack(true, 'libffi_init', null),
    mirrors: 'ngx.load_ffi: handle.libffi_init(cfg, tq)' },
  { case: 'ngx.load_nonblocking_ffi calls lib_nonblocking_ffi_init', at: ['/initsym', 'nonblocking'],
    expect: pack(true, 'lib_nonblocking_ffi_init', null),
    mirrors: 'ngx.load_nonblocking_ffi: handle.lib_nonblocking_ffi_init(cfg, tq)' },
  { case: 'a lib_nonblocking_ffi_init runtime through ngx.load_nonblocking_ffi', at: ['/nonblocking', 'call'],
    expect: pack(true, 'nb', null),
    mirrors: 'ngx.load_nonblocking_ffi(lib, cfg, opts) and the ngx_http_lua_nonblocking_ffi_* ABI' },
  { case: 'ngx.load_nonblocking_ffi(lib, cfg, max_queue, is_global)', at: ['/nonblocking', 'legacy'],
    expect: pack(true, 'old', null),
    mirrors: 'nonblocking_ffi.lua before opts (Sept. 2022): positional max_queue, is_global' },
];

describe('lua-resty-ffi code gets the values lua-resty-ffi gives', () => {
  it.each(ROWS)('$case', async (row) => {
    const [route, field] = row.at;
    const doc = await answer(route);
    const got = normal(field ? doc[field] : doc);
    expect(got, `${route} ${field}: mirrors ${row.mirrors}`).toEqual(row.expect);
  });

  it('the runtime object: finished before and after __unload, same object per lib&cfg, a new one after __unload', async () => {
    const doc = await answer('/unload');
    expect(doc.finished_before).toBe(false);
    expect(doc.finished_after).toBe(true);
    expect(normal(doc.before)).toEqual(pack(true, 'x', null));
    expect(doc.reload_is_new).toBe(true);
    expect((await answer('/load')).same).toBe(true);
    expect((await answer('/unpin')).reload_is_new).toBe(true);
    expect(normal((await answer('/unpin')).first)).toEqual(pack(true, 'u', null));
  });

  it('a full queue still serves the tasks it took', async () => {
    const doc = await answer('/queuefull');
    expect(doc.served.map(normal)).toEqual([pack(true, 'a', null), pack(true, 'b', null), pack(true, 'c', null)]);
  });

  it('the task hook (the inspector) keeps its own words: "timeout", "queue full"', async () => {
    const doc = await answer('/hookwords');
    expect(normal(doc.timeout)).toEqual(pack(false, 'timeout'));
    expect(normal(doc.full)).toEqual(pack(false, FULL));
    expect(doc.hook).toEqual(['timeout', 'queue full']);
  });
});
