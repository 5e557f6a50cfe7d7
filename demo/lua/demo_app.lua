-- The demo gateway: a few API handlers that call the example runtimes through
-- nffi, so the inspector has live coroutines and FFI tasks to show.
local nffi = require "nffi"
local cjson = require "cjson.safe"
local stats_share = require "nffi.stats_share"

local ngx = ngx
local var = ngx.var
local say = ngx.say
local tostring = tostring
local tonumber = tonumber

local _M = {}

local runtimes = {}

-- loaded in init_worker: the runtime threads start in each worker
function _M.init_worker()
    runtimes.echo = assert(nffi.load("nffi_echo", nil, { name = "echo" }))
    runtimes.slow = assert(nffi.load("nffi_slow", "20", { name = "slow", timeout = 1000 }))
    runtimes.fail = assert(nffi.load("nffi_fail", "3", { name = "fail" }))
    runtimes.pool = assert(nffi.load("nffi_echo_mt", "4", { name = "pool" }))
    -- Go (native/examples/go): the method is the request's first word
    runtimes.go = assert(nffi.load("nffi_go_echo", "pollers=2", { name = "go" }))
    -- Python (native/examples/python): "<method>\n<body>", 2 cffi pollers
    runtimes.py = assert(nffi.load("nffi_python", "nffi_echo_py,init,pollers=2", { name = "py" }))
    assert(stats_share.start("nffi_stats", 1))
    -- dormant until someone attaches: `nffi-inspect coroutines <master pid>`
    assert(require("nffi.inspect").start())
end

local function reply(ok, res, err)
    ngx.header["Content-Type"] = "application/json"
    say(cjson.encode({ ok = ok, res = res, err = err and tostring(err) or nil }))
end

local handlers = {}

function handlers.echo()
    reply(runtimes.echo:echo(var.arg_msg or "hello"))
end

function handlers.slow()
    local delay = tonumber(var.arg_ms) or 20
    reply(runtimes.slow:fetch("delay=" .. delay .. ";" .. (var.arg_msg or "slow hello")))
end

function handlers.fail()
    reply(runtimes.fail:charge(var.arg_msg or "card 4242"))
end

function handlers.fanout()
    local threads = {}
    for i = 1, 4 do
        threads[i] = ngx.thread.spawn(runtimes.pool.lookup, runtimes.pool, "key" .. i)
    end
    local n = 0
    for i = 1, #threads do
        local _, ok = ngx.thread.wait(threads[i])
        if ok then
            n = n + 1
        end
    end
    reply(n == #threads, n)
end

function handlers.go()
    reply(runtimes.go:echo("echo " .. (var.arg_msg or "hello from Go")))
end

function handlers.py()
    reply(runtimes.py:echo("echo\n" .. (var.arg_msg or "hello from Python")))
end

function handlers.stats()
    ngx.header["Content-Type"] = "application/json"
    say(cjson.encode({ workers = stats_share.collect("nffi_stats") }))
end

function _M.handle(name)
    local h = handlers[name]
    if not h then
        ngx.status = 404
        return say("unknown handler ", name)
    end
    h()
end

return _M
