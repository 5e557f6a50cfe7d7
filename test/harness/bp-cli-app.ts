// nginx lines that mount test/fixtures/lua/bp_cli_app.lua with the agent, and the line the CLI
// breakpoint tests break on (the one marked `-- BREAK`, so editing the fixture moves it too).
import { readFileSync } from 'node:fs';
import { FIXTURE_LUA } from './ffi-app.js';

export { FIXTURE_LUA };

export const BP_CLI_FILE = 'bp_cli_app.lua';

export const BREAK_LINE = readFileSync(`${FIXTURE_LUA}/${BP_CLI_FILE}`, 'utf8')
  .split('\n').findIndex((l) => l.includes('-- BREAK')) + 1;

export const BP_CLI_HTTP = `
init_worker_by_lua_block { require("nffi.inspect").start() }

server {
    listen 127.0.0.1:$PORT;

    location = /work {
        content_by_lua_block { require("bp_cli_app").route() }
    }
}
`;
