// The nginx lines that mount test/fixtures/lua/bp_app.lua with the agent loaded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_LUA } from './ffi-app.js';

export { FIXTURE_LUA };

export const BP_APP_HTTP = `
lua_shared_dict bp 1m;
init_by_lua_block {
    require("bp_early")
}
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
    require("bp_app").init()
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("bp_app").route() }
    }
}
`;

/** Line of the `BP:<name>` marker in a fixture file. */
export function markerLine(file: string, name: string): number {
  const lines = readFileSync(join(FIXTURE_LUA, file), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`BP:${name} `) || l.endsWith(`BP:${name}`));
  if (i < 0) throw new Error(`no BP:${name} in ${file}`);
  return i + 1;
}
