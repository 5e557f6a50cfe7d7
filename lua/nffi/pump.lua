-- The per-worker pump: one light thread holding a cosocket to libnffi's wake
-- socket. Runtime threads write one coalesced byte when tasks complete; the pump
-- drains the done list and posts the semaphore of each waiting coroutine.
-- Everything here runs on the worker's event-loop thread.
local ffi = require "ffi"
local native = require "nffi.native"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local timer_at = ngx.timer.at
local socket_tcp = ngx.socket.tcp
local worker_exiting = ngx.worker.exiting
local ffi_new = ffi.new
local ffi_string = ffi.string
local tonumber = tonumber
local next = next
local pcall = pcall

local _M = { _VERSION = "0.1.0" }

local DRAIN_BATCH = 256
-- The pump never wakes on its own: a read timeout would cost an error-log line
-- ("lua tcp socket read timed out") each time. Completions write a byte; at
-- worker exit the exit watch below kicks it, and so does a waiter that times
-- out while the worker exits.
local READ_TIMEOUT_MS = 2147483647
local RETRY_DELAY_S = 0.5
-- ~0.5 years: only ever fires prematurely, at worker shutdown.
local EXIT_WATCH_DELAY_S = 15552000

-- task id -> semaphore of the coroutine waiting for it
local waiting = {}
_M.waiting = waiting

local running = false
local exit_watch_armed = false
local drained = ffi_new("nffi_task *[?]", DRAIN_BATCH)

local function drain(C)
    while true do
        local n = C.nffi_drain(drained, DRAIN_BATCH)
        for i = 0, n - 1 do
            local id = tonumber(C.nffi_task_id(drained[i]))
            local sema = waiting[id]
            -- no sema: the waiter timed out and is about to abandon the task,
            -- which frees a READY task at once
            if sema then
                waiting[id] = nil
                sema:post(1)
            end
        end
        if n < DRAIN_BATCH then
            return
        end
    end
end

-- Lets a waiter drain by itself when no pump can run (worker exiting).
_M.drain_now = drain

local function connect(C)
    local path_buf = ffi_new("char[?]", 256)
    local lfd = C.nffi_wake_listen(path_buf, 256)
    if lfd < 0 then
        return nil, "nffi_wake_listen failed: errno " .. -lfd
    end
    local path = ffi_string(path_buf)
    local sock = socket_tcp()
    sock:settimeout(1000)
    local ok, err = sock:connect("unix:" .. path)
    -- accept even on failure: it also closes the listening fd and removes the file
    local rc = C.nffi_wake_accept(lfd, path)
    if not ok then
        return nil, "connect to wake socket failed: " .. err
    end
    if rc ~= 0 then
        sock:close()
        return nil, "nffi_wake_accept failed: errno " .. -rc
    end
    sock:settimeouts(1000, 1000, READ_TIMEOUT_MS)
    return sock
end

local start

local function on_worker_exit(premature)
    if premature and running then
        native.lib().nffi_wake_kick()
    end
end

local function arm_exit_watch()
    if exit_watch_armed then
        return
    end
    local ok = timer_at(EXIT_WATCH_DELAY_S, on_worker_exit)
    exit_watch_armed = ok and true or false
end

local EXIT_POLL_MS = 100    -- the pump's read timeout once the worker is exiting

-- Runs until the socket breaks, or the worker exits with nobody waiting.
local function run(C)
    local sock, err = connect(C)
    if not sock then
        return nil, err
    end
    while true do
        drain(C)
        -- checked after the drain, which may have emptied waiting: checked
        -- before it, the last wake-up's waiters were served and the pump went
        -- back to a read nothing would ever end, holding the old worker
        if worker_exiting() then
            if next(waiting) == nil then
                sock:close()
                return true
            end
            sock:settimeout(EXIT_POLL_MS)  -- waiters may time out with no wake-up
        end
        local data, rerr = sock:receiveany(4096)
        if not data and rerr ~= "timeout" then
            sock:close()
            return nil, "wake socket: " .. rerr
        end
    end
end

local function pump(premature)
    if premature then
        -- the worker is exiting before the pump ever ran: serve what is waiting
        if next(waiting) == nil then
            running = false
            return
        end
    end
    local C = native.lib()
    local ok, done, err = pcall(run, C)
    if not ok then
        err = done
    end
    running = false
    if ok and done then
        return
    end
    ngx_log(ERR, "[nffi pump restart] ", err)
    if not worker_exiting() or next(waiting) ~= nil then
        start(RETRY_DELAY_S)
    end
end

start = function(delay)
    running = true
    local ok, err = timer_at(delay or 0, pump)
    if not ok then
        running = false
        if err ~= "process exiting" then
            ngx_log(WARN, "[nffi pump not started] ", err)
        end
        return nil, err
    end
    arm_exit_watch()
    return true
end

-- Called before every wait: cheap when the pump is already up.
function _M.ensure()
    if running then
        return true
    end
    return start(0)
end

function _M.running()
    return running
end

return _M
