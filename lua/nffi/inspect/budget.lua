-- Time slices for long walks: a walk calls b:step() often; once the slice is
-- used up (0.75 ms by default) it yields with ngx.sleep(0.001). ngx.sleep(0)
-- would warn and spin on stock nginx, so a real 1 ms sleep it is.
-- The slice is the worker's, not each walk's: the agent's coroutines (the
-- reader, the server, the writer, a walk in a timer) can each be resumed
-- within one turn of the event loop (a semaphore post wakes a light thread in
-- the same turn, with no timer run between them), and a slice each made
-- 1.5-2 ms back to back. So a slice counts from when the agent began to run in
-- this turn, whichever coroutine it was, and a budget made or resumed later in
-- the same turn has only what is left of it. A turn is told by nginx's cached
-- clock (ngx.now(): updated once a turn, after epoll): while it reads the
-- same, the loop has not come round (a new turn within the same millisecond
-- counts as the same one: an early yield, never a late one).
local native = require "nffi.native"

local ngx_sleep = ngx.sleep
local ngx_now = ngx.now
local tonumber = tonumber
local setmetatable = setmetatable
local pairs = pairs

local _M = { _VERSION = "0.1.0" }

local DEFAULT_SLICE_NS = 750000
local YIELD_S = 0.001
-- the clock is read once per this many steps
local CHECK_EVERY = 32

local mt = {}
mt.__index = mt

-- The agent's run in this turn of the event loop: the turn (ngx.now()) and
-- when the run began (ns). A new turn starts a new run.
local run_turn, run_start = -1, 0

local function enter(now)
    local turn = ngx_now()
    if turn ~= run_turn then
        run_turn, run_start = turn, now
    end
end

local function now_ns()
    return tonumber(native.lib().nffi_now_ns())
end

local function cpu_ns()
    return tonumber(native.lib().nffi_thread_cpu_ns())
end
_M.now_ns = now_ns

-- The same numbers per request method (the label a budget is made with), so a
-- client can tell how one command was cut. Few methods exist: no cap needed.
local by_label = {}

-- label: what the slices are counted under (a request method), or nil.
function _M.new(slice_ns, label)
    local per
    if label then
        per = by_label[label]
        if not per then
            per = { requests = 0, slices = 0, yields = 0, worst_ns = 0, worst_cpu_ns = 0 }
            by_label[label] = per
        end
        per.requests = per.requests + 1
    end
    local now = now_ns()
    enter(now)
    -- start/cpu_start open this coroutine's slice, for the accounting; the
    -- worker's run (run_start) decides the next yield
    return setmetatable({ slice = slice_ns or DEFAULT_SLICE_NS, start = now,
                          cpu_start = cpu_ns(), n = 0, yields = 0, per = per }, mt)
end

-- Counts one unit of work; yields when the slice is spent.
function mt:step()
    local n = self.n + 1
    if n < CHECK_EVERY then
        self.n = n
        return
    end
    self.n = 0
    self:check()
end

-- The longest stretch any walk held the event loop, since the worker started:
-- what the "never more than ~2 ms at a time" promise is checked against. Wall
-- time also counts while the OS ran other processes; CPU time is the worker
-- thread's own work (the agent's, and any GC step its allocations triggered).
local worst_ns, worst_cpu_ns, slices = 0, 0, 0

local function record(self, now)
    local spent, cpu = now - self.start, cpu_ns() - self.cpu_start
    slices = slices + 1
    if spent > worst_ns then
        worst_ns = spent
    end
    if cpu > worst_cpu_ns then
        worst_cpu_ns = cpu
    end
    local per = self.per
    if per then
        per.slices = per.slices + 1
        if spent > per.worst_ns then
            per.worst_ns = spent
        end
        if cpu > per.worst_cpu_ns then
            per.worst_cpu_ns = cpu
        end
    end
end

-- Reads the clock now (for units of work that are large).
function mt:check()
    local now = now_ns()
    if now - run_start >= self.slice then
        record(self, now)
        ngx_sleep(YIELD_S)
        self.yields = self.yields + 1
        if self.per then
            self.per.yields = self.per.yields + 1
        end
        self.start = now_ns()
        self.cpu_start = cpu_ns()
        -- a 1 ms sleep ends in a later turn: a new run, from now
        enter(self.start)
    end
end

-- Closes the current slice before something that may yield by itself (a
-- cosocket send): time spent yielded does not hold the event loop.
function mt:finish()
    record(self, now_ns())
end

-- Opens a new slice for the accounting once that something returned. It did
-- yield if the turn changed (a new run starts); if not, the run goes on: a
-- run of sends that never block stays bounded.
function mt:resume()
    self.start = now_ns()
    self.cpu_start = cpu_ns()
    enter(self.start)
end

function _M.stats()
    local methods = {}
    for label, per in pairs(by_label) do
        methods[label] = { requests = per.requests, slices = per.slices, yields = per.yields,
                           max_slice_ms = per.worst_ns / 1e6,
                           max_slice_cpu_ms = per.worst_cpu_ns / 1e6 }
    end
    return { max_slice_ms = worst_ns / 1e6, max_slice_cpu_ms = worst_cpu_ns / 1e6,
             slices = slices, methods = methods }
end

return _M
