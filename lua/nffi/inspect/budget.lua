-- Time slices for long walks: a walk calls b:step() often; once the slice is
-- used up (1 ms by default) it yields with ngx.sleep(0.001). ngx.sleep(0)
-- would warn and spin on stock nginx, so a real 1 ms sleep it is.
local native = require "nffi.native"

local ngx_sleep = ngx.sleep
local tonumber = tonumber
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }

local DEFAULT_SLICE_NS = 1000000
local YIELD_S = 0.001
-- the clock is read once per this many steps
local CHECK_EVERY = 32

local mt = {}
mt.__index = mt

local function now_ns()
    return tonumber(native.lib().nffi_now_ns())
end
_M.now_ns = now_ns

function _M.new(slice_ns)
    return setmetatable({ slice = slice_ns or DEFAULT_SLICE_NS, start = now_ns(), n = 0,
                          yields = 0 }, mt)
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

-- Reads the clock now (for units of work that are large).
function mt:check()
    if now_ns() - self.start >= self.slice then
        ngx_sleep(YIELD_S)
        self.yields = self.yields + 1
        self.start = now_ns()
    end
end

return _M
