-- Time slices for long walks: a walk calls b:step() often; once the slice is
-- used up (0.75 ms by default) it yields with ngx.sleep(0.001). ngx.sleep(0)
-- would warn and spin on stock nginx, so a real 1 ms sleep it is.
local native = require "nffi.native"

local ngx_sleep = ngx.sleep
local tonumber = tonumber
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }

local DEFAULT_SLICE_NS = 750000
local YIELD_S = 0.001
-- the clock is read once per this many steps
local CHECK_EVERY = 32

local mt = {}
mt.__index = mt

local function now_ns()
    return tonumber(native.lib().nffi_now_ns())
end

local function cpu_ns()
    return tonumber(native.lib().nffi_thread_cpu_ns())
end
_M.now_ns = now_ns

function _M.new(slice_ns)
    return setmetatable({ slice = slice_ns or DEFAULT_SLICE_NS, start = now_ns(),
                          cpu_start = cpu_ns(), n = 0, yields = 0 }, mt)
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
end

-- Reads the clock now (for units of work that are large).
function mt:check()
    local now = now_ns()
    if now - self.start >= self.slice then
        record(self, now)
        ngx_sleep(YIELD_S)
        self.yields = self.yields + 1
        self.start = now_ns()
        self.cpu_start = cpu_ns()
    end
end

-- Closes the last slice of a walk, once its answer is encoded (sending may
-- yield, and time spent yielded does not hold the event loop).
function mt:finish()
    record(self, now_ns())
end

function _M.stats()
    return { max_slice_ms = worst_ns / 1e6, max_slice_cpu_ms = worst_cpu_ns / 1e6,
             slices = slices }
end

return _M
