// nginx lines for the probe's end-to-end tests: the agent, plus requests that park on an
// nffi task (/park?ms=) or in ngx.sleep (/sleep?s=) so there is something to see.
export const AGENT = 'init_worker_by_lua_block { require("nffi.inspect").start() }';
// A request that parks on an nffi task for `hold` ms (the slow runtime's poller sleeps).
export const PARK_HTTP = `
${AGENT}
server {
    listen 127.0.0.1:$PORT;
    location = /park {
        content_by_lua_block {
            local rt = require("nffi").load("nffi_slow", "0", { name = "e2e_slow" })
            local hold = tonumber(ngx.var.arg_ms) or 1500
            local ok, res = rt:wait("hold=" .. hold .. ";parked")
            ngx.say(tostring(ok), " ", tostring(res))
        }
    }
    location = /sleep {
        content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 2) ngx.say("ok") }
    }
}`;

