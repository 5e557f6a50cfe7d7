// nginx lines that mount test/fixtures/lua/task_app.lua (the example runtimes behind
// /echo, /fail, /slow) with the agent, for the task breakpoint tests.
import { FIXTURE_LUA } from './ffi-app.js';

export { FIXTURE_LUA };

/** The agent's run dir comes from NFFI_INSPECT_RUN_DIR when set (agent-level tests), else its default. */
export const TASK_APP_HTTP = `
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
    require("task_app")
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("task_app").route() }
    }
}
`;
