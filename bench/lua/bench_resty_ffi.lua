-- lua-resty-ffi's own benchmark shape (its examples/go nginx.conf,
-- /ffi_benchmark): N echo calls one after another from one coroutine, timed
-- here in the worker, through nffi to the Go runtime (libnffi_go_echo.so) or
-- through a cosocket to the Go unix-socket echo server (nffi_go_uds). Every
-- reply is checked byte for byte and counted.
local nffi = require "nffi"
local native = require "nffi.native"
local cjson = require "cjson.safe"

local ngx = ngx
local var = ngx.var
local socket_tcp = ngx.socket.tcp
local str_char = string.char
local str_byte = string.byte
local math_random = math.random
local floor = math.floor
local concat = table.concat
local tonumber = tonumber
local tostring = tostring

local _M = {}

local now_ns = native.lib().nffi_now_ns

local function be32(n)
    return str_char(floor(n / 16777216) % 256, floor(n / 65536) % 256,
                    floor(n / 256) % 256, n % 256)
end

local function unbe32(s)
    local a, b, c, d = str_byte(s, 1, 4)
    return ((a * 256 + b) * 256 + c) * 256 + d
end

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
    local sock = socket_tcp()
    assert(sock:connect("unix:" .. uds_path))
    local msg = be32(#payload) .. payload
    return function()
        assert(sock:send(msg))
        local hdr = assert(sock:receive(4))
        return (assert(sock:receive(unbe32(hdr))))
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
