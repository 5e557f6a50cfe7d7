-- The per-hit budget of a condition or log template (cond.lua), the meter:
-- every step of an expression, every byte a built-in scans or makes
-- (cond_lib.lua) and every character the pattern matcher (cond_match.lua)
-- tests is charged; past it, or past a CPU time limit, evaluation raises and
-- the breakpoint is removed (reason error). Also the longest string a
-- condition may make.
local pattern = require "nffi.inspect.cond_pattern"

local pcall = pcall
local error = error
local tonumber = tonumber
local math_floor = math.floor

local _M = { _VERSION = "0.1.0" }

-- Per hit: steps (one per expression node; a built-in pays for its bytes,
-- BYTES_PER_STEP a step; the pattern matcher about one per character it
-- tests), and the longest string it may make. Measured with the JIT off (as
-- in a hook): the costliest kinds of step (backtracking, frontiers, gsub
-- pieces) run at 35-90 ns, so a whole budget is at most about 1 ms.
local BUDGET = 10000
local BYTES_PER_STEP = 32
local MAX_STRING = 65536
-- CPU time, read every CLOCK_EVERY steps: a net under the step count.
local CLOCK_EVERY = 1024
local TIME_LIMIT_NS = 5e6
_M.BUDGET, _M.MAX_STRING, _M.TIME_LIMIT_NS = BUDGET, MAX_STRING, TIME_LIMIT_NS

local meter = { left = BUDGET, next_check = BUDGET - CLOCK_EVERY, t0 = false }
_M.meter = meter

local cpu_ns  -- libnffi's thread CPU clock; false when the library is not there

local function over()
    error("over the per-hit budget (" .. BUDGET .. " steps)", 0)
end

local function check(left)
    if left < 0 then
        over()
    end
    meter.next_check = left - CLOCK_EVERY
    if cpu_ns == nil then
        local ok, lib = pcall(function()
            return require("nffi.native").lib()
        end)
        cpu_ns = ok and lib.nffi_thread_cpu_ns or false
    end
    if cpu_ns then
        local now = tonumber(cpu_ns())
        local t0 = meter.t0
        if not t0 then
            meter.t0 = now
        elseif now - t0 > TIME_LIMIT_NS then
            error("over the per-hit time budget (" .. TIME_LIMIT_NS / 1e6 .. " ms)", 0)
        end
    end
end

-- A new hit: a full budget.
function _M.reset()
    meter.left = BUDGET
    meter.next_check = BUDGET - CLOCK_EVERY
    meter.t0 = false
end

local function charge(n)
    local left = meter.left - n
    meter.left = left
    if left < meter.next_check then
        check(left)
    end
end
_M.charge = charge

pattern.set_meter(meter, function()
    charge(0)
end)

local function charge_bytes(n)
    charge(1 + math_floor(n / BYTES_PER_STEP))
end

local function string_made(s)
    local n = #s
    if n > MAX_STRING then
        error("string longer than " .. MAX_STRING .. " bytes", 0)
    end
    charge_bytes(n)
    return s
end
_M.charge_bytes = charge_bytes
_M.string_made = string_made

local function too_long(n)
    if n > MAX_STRING then
        error("string longer than " .. MAX_STRING .. " bytes", 0)
    end
end
_M.too_long = too_long

return _M
