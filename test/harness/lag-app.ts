// The nginx lines that mount test/fixtures/lua/lag_app.lua with the agent loaded.
// NFFI_INSPECT_RUN_DIR and NFFI_INSPECT_POLL (seconds) are passed through nginx `env`.
export { FIXTURE_LUA } from './ffi-app.js';

export const LAG_APP_HTTP = `
lua_shared_dict lag 1m;
init_worker_by_lua_block {
    require("nffi.inspect").start({
        run_dir = os.getenv("NFFI_INSPECT_RUN_DIR"),
        poll_interval = tonumber(os.getenv("NFFI_INSPECT_POLL") or "0.1"),
    })
    require("lag_app").start()
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("lag_app").route() }
    }
}
`;
