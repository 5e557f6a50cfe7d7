// The nginx lines that mount test/fixtures/lua/park_app.lua with the agent loaded.
// NFFI_INSPECT_RUN_DIR (nginx `env`) gives each test file its own run dir.
export { FIXTURE_LUA } from './ffi-app.js';

export const PARK_APP_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("park_app").route() }
    }
}
`;
