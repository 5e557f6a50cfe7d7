// The nginx lines that mount test/fixtures/lua/ffi_app.lua.
import { fileURLToPath } from 'node:url';

export const FIXTURE_LUA = fileURLToPath(new URL('../fixtures/lua', import.meta.url));

export const FFI_APP_HTTP = `
lua_shared_dict nffi_stats 1m;
client_max_body_size 64m;
client_body_buffer_size 64m;
init_worker_by_lua_block { require("nffi.stats_share").start("nffi_stats", 0.2) }

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("ffi_app").route() }
    }

    location = /phase {
        content_by_lua_block { ngx.say("body") }
        header_filter_by_lua_block {
            local rt = require("nffi").load("nffi_echo")
            local ok, err = pcall(rt.echo, rt, "x")
            ngx.header["X-Nffi-Error"] = ok and "none" or tostring(err)
        }
    }
}
`;
