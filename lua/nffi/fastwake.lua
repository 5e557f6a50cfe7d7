-- The eventfd wake-up path (native/ngx/nffi_ngx.c) of this worker: tried once,
-- when the first runtime starts in the worker. Up, a response reaches its
-- waiting coroutine through one eventfd that nginx's event loop watches and
-- whose handler posts the waiter's semaphore (no pump light thread, no
-- cosocket read). When it cannot prove itself (no nginx headers at build time,
-- headers of another nginx, an event method other than epoll, a worker that
-- exits), the pump (pump.lua) stays the path and reason() says why.
local ffi = require "ffi"
local native = require "nffi.native"

local ngx = ngx
local ngx_log = ngx.log
local INFO = ngx.INFO
local WARN = ngx.WARN
local worker_pid = ngx.worker.pid
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_load = ffi.load
local pcall = pcall
local tostring = tostring
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

-- Test switch, read when a worker tries the path: "headers" and "event" make
-- libnffi_ngx's own checks fail as they would against another nginx's headers
-- or another event method; "off" never tries.
_M.fault = nil
local FAULTS = { headers = 1, event = 2 }

local G            -- libnffi_ngx.so, loaded in the worker
local tried_pid    -- the worker the last try ran in
local reason       -- why the pump is this worker's path; nil while the eventfd is
local REASON_MAX = 256
local reason_buf = ffi_new("char[?]", REASON_MAX)

local function try()
    if _M.fault == "off" then
        return nil, "switched off (test)"
    end
    local path = native.native_dir .. "/libnffi_ngx.so"
    if not G then
        if not native.exists(path) then
            return nil, "libnffi_ngx.so not built (no nginx headers: install nginx-dev)"
        end
        native.lib()   -- first: libnffi_ngx binds to libnffi's nffi_fast_*
        local ok, lib = pcall(ffi_load, path)
        if not ok then
            return nil, "cannot load libnffi_ngx.so: " .. tostring(lib)
        end
        G = lib
    end
    if G.nffi_ngx_start(FAULTS[_M.fault] or 0, reason_buf, REASON_MAX) ~= 0 then
        return nil, ffi_string(reason_buf)
    end
    return true
end

-- Tries the path once per worker (runtime.lua calls it when a runtime starts).
function _M.ensure()
    local pid = worker_pid()
    if tried_pid == pid then
        return reason == nil
    end
    tried_pid = pid
    local ok, err = try()
    if ok then
        reason = nil
        ngx_log(INFO, "[nffi wake eventfd]")
        return true
    end
    reason = err
    ngx_log(WARN, "[nffi wake pump: ", err, "]")
    return false
end

-- Whether responses reach waiters through the eventfd now (it stops when the
-- worker exits and nobody waits any more).
function _M.active()
    return reason == nil and G ~= nil and tried_pid == worker_pid() and G.nffi_ngx_active() ~= 0
end

-- Why the pump is the path (nil while the eventfd is).
function _M.reason()
    if _M.active() then
        return nil
    end
    if tried_pid ~= worker_pid() then
        return "not tried in this worker yet"
    end
    return reason or "stopped: the worker is exiting"
end

-- A waiter gave up while the worker exits: the eventfd may close now.
function _M.exit_check()
    if G and tried_pid == worker_pid() then
        G.nffi_ngx_exit_check()
    end
end

-- How long the event loop polls for the response of a call made one after
-- another (libnffi_ngx.so's short poll), in µs: nil for the default (30), 0
-- never. Per worker; for benchmarks and tuning.
function _M.set_loop_poll(us)
    if G and tried_pid == worker_pid() then
        G.nffi_ngx_set_poll_us(us or 30)
    end
end

local wake_buf = ffi_new("nffi_wake_stats")

-- This worker's wake-up counters (libnffi's nffi_wake_stats).
function _M.stats()
    native.lib().nffi_wake_stats_get(wake_buf)
    local s = wake_buf
    return {
        path = _M.active() and "eventfd" or "pump",
        reason = _M.reason(),
        fast_wakeups = tonumber(s.fast_wakeups),
        fast_posted = tonumber(s.fast_posted),
        fast_max_batch = tonumber(s.fast_max_batch),
        signals = tonumber(s.signals),
        outstanding = tonumber(s.outstanding),
        loop_hits = tonumber(s.loop_hits),
    }
end

return _M
