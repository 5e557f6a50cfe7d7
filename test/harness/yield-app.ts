// The nginx lines that mount test/fixtures/lua/yield_app.lua with the agent loaded.
// NFFI_INSPECT_RUN_DIR (nginx `env`) gives the test file its own run dir.
import { FIXTURE_LUA } from './ffi-app.js';

export { FIXTURE_LUA };

export const YIELD_APP_HTTP = `
lua_shared_dict yield 1m;
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("yield_app").route() }
    }
}
`;
