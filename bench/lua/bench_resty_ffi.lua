-- lua-resty-ffi's own benchmark shape (its examples/go nginx.conf,
-- /ffi_benchmark): N echo calls one after another from one coroutine, timed
-- here in the worker, through nffi to the Go runtime (libnffi_go_echo.so) or
-- through a cosocket to the Go unix-socket echo server (nffi_go_uds). Every
-- reply is checked byte for byte and counted.
local nffi = require "nffi"
local native = require "nffi.native"
local cjson = require "cjson.safe"
local uds = require "bench_uds"

local ngx = ngx
local var = ngx.var
local str_char = string.char
local math_random = math.random
local concat = table.concat
local tonumber = tonumber
local tostring = tostring

local _M = {}

local now_ns = native.lib().nffi_now_ns

-- every byte value, NUL included
local function payload_of(size)
    local t = {}
    for i = 1, size do
        t[i] = str_char(math_random(0, 255))
    end
    return concat(t)
end

local ways = {}

-- the request is built once: what is timed is the call
function ways.nffi(payload)
    local rt = assert(nffi.load("nffi_go_echo", nil, { name = "go_bench" }))
    local req = "echo " .. payload
    return function()
        local ok, res = rt:echo(req)
        return ok and res
    end
end

function ways.uds(payload, uds_path)
    local sock, call = uds.client(uds_path)
    local msg = uds.frame(payload)
    return function()
        return call(msg)
    end, function()
        sock:close()
    end
end

-- n calls; how many answered with exactly the payload
local function loop(call, payload, n)
    local good = 0
    for _ = 1, n do
        if call() == payload then
            good = good + 1
        end
    end
    return good
end

function _M.run()
    local way = ways[var.arg_way]
    if not way then
        ngx.status = 400
        return ngx.say("unknown way ", tostring(var.arg_way), " (nffi, uds)")
    end
    local size, n = tonumber(var.arg_size), tonumber(var.arg_n)
    local warm = tonumber(var.arg_warm) or 0
    local payload = payload_of(size)
    local call, close = way(payload, var.arg_uds and ngx.unescape_uri(var.arg_uds))
    -- threads started, connection up, traces compiled
    local warm_good = loop(call, payload, warm)
    local t0 = now_ns()
    local good = loop(call, payload, n)
    local elapsed_ns = tonumber(now_ns() - t0)
    if close then
        close()
    end
    ngx.say(cjson.encode({ way = var.arg_way, size = size, calls = n, good = good,
                           warm = warm, warm_good = warm_good, seconds = elapsed_ns / 1e9 }))
end

return _M
