// nginx lines that mount test/fixtures/lua/tui_app.lua with the agent (each worker holds
// runtime "held" still: 1 task in flight in a gate, 3 + 2 * worker id pending behind it), and
// the line the attach end-to-end test breaks on (the one marked `-- BREAK`).
import { readFileSync } from 'node:fs';
import { FIXTURE_LUA } from './ffi-app.js';

export { FIXTURE_LUA };

export const TUI_APP_FILE = 'tui_app.lua';

export const TUI_BREAK_LINE = readFileSync(`${FIXTURE_LUA}/${TUI_APP_FILE}`, 'utf8')
  .split('\n').findIndex((l) => l.includes('-- BREAK')) + 1;

/** The fixture's functions a pending task's coroutine runs in, innermost first. */
export const TUI_WAIT_FUNCTIONS = ['wait_in_queue', 'queued_request'];

export const TUI_APP_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start()
    require("tui_app").init()
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("tui_app").route() }
    }
}
`;
