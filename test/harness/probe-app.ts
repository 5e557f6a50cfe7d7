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
    # the same, twice in one worker: first on a runtime that opted out of instrumentation
    # (its task has no age), then on an instrumented one
    location = /park_mixed {
        content_by_lua_block {
            local nffi = require("nffi")
            local quiet = nffi.load("nffi_slow", "0#quiet", { name = "e2e_quiet", instrument = false })
            local timed = nffi.load("nffi_slow", "0#timed", { name = "e2e_timed" })
            local req = "delay=" .. (tonumber(ngx.var.arg_ms) or 1500) .. ";parked"
            local th = ngx.thread.spawn(function() return quiet:wait(req) end)
            local ok, res = timed:wait(req)
            local ok2, res2 = select(2, ngx.thread.wait(th))
            ngx.say(tostring(ok), " ", tostring(res), " ", tostring(ok2), " ", tostring(res2))
        }
    }
    location = /sleep {
        content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 2) ngx.say("ok") }
    }
}`;

