// nginx lines that mount test/fixtures/lua/spec_app.lua (and spec_late.lua, spec_lazy.lua, loaded
// on the first GET /late, /lazy) with the agent and the example runtime `echo`, and the lines the
// spec tests name (found by their markers, so editing the fixtures moves them too).
import { readFileSync } from 'node:fs';
import { FIXTURE_LUA } from './ffi-app.js';

export { FIXTURE_LUA };

export const SPEC_FILE = 'spec_app.lua';
export const LATE_FILE = 'spec_late.lua';
export const LAZY_FILE = 'spec_lazy.lua';

const lineOf = (file: string, marker: string): number =>
  readFileSync(`${FIXTURE_LUA}/${file}`, 'utf8').split('\n').findIndex((l) => l.includes(marker)) + 1;

/** handle()'s ngx.say line: locals n, user, doubled; upvalues calls, ngx. */
export const SPEC_BREAK = lineOf(SPEC_FILE, '-- BREAK');
/** `for i = 1, 2 do ... end` on one line: `i` is live inside it, not where it starts. */
export const SPEC_LOOP = lineOf(SPEC_FILE, '-- LOOP');
/** Comment lines of spec_late.lua, at the top level and inside run(); the next line with code
 * (once the file has loaded) is LATE_RUN. */
export const LATE_GAP = lineOf(LATE_FILE, '-- GAP');
export const LATE_INSIDE = lineOf(LATE_FILE, '-- INSIDE');
export const LATE_RUN = lineOf(LATE_FILE, 'local tripled');
export const LATE_SAY = lineOf(LATE_FILE, '-- LATE');
export const LAZY_SAY = lineOf(LAZY_FILE, '-- LAZY');

export const SPEC_APP_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start()
    assert(require("nffi").load("nffi_echo", nil, { name = "echo" }))
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("spec_app").route() }
    }
}
`;
