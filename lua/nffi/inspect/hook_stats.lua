-- The C hook's counters and state (native/src/hook_stats.c) in one call, as
-- Agent.getStats shows them under breakpoints.native: the keys are the ones
-- breakpoints.get_stats has always used. gated is not among them: it is the
-- agent's own state, not the library's.
local ffi = require "ffi"
require "nffi.cdefs"            -- declares nffi_hook_stats and nffi_hook_get_stats

local ffi_new = ffi.new
local ffi_string = ffi.string
local tonumber = tonumber

local _M = { _VERSION = "0.1.0" }

-- One struct for the module's life: an upvalue of read, so the GC never frees
-- it while the library writes into it. read copies every field out before it
-- returns, and nothing yields in between, so no two reads share a half-filled
-- struct.
local buf = ffi_new("nffi_hook_stats")

-- lib: the loaded libnffi. L: any lua_State of the VM (a cdata pointer), for
-- mask; without one (nil or NULL) mask is nil, as before.
function _M.read(lib, L)
    lib.nffi_hook_get_stats(L, buf)
    local s = buf
    return {
        calls = tonumber(s.calls),
        matches = tonumber(s.matches),
        errors = tonumber(s.errors),
        mask = L ~= nil and s.mask or nil,
        inside = s.inside,
        resumes = tonumber(s.resumes),
        repeats = tonumber(s.repeats),
        fast = s.fast,
        watching = s.watching == 1,
        watch_entries = tonumber(s.watch_entries),
        watch_traps = tonumber(s.watch_traps),
        watch_late = tonumber(s.watch_late),
        -- the library rewrites this buffer: copied now
        watch_reason = ffi_string(s.watch_reason),
        watch_ok = s.watch_ok == 1,
        muted = tonumber(s.muted),
        watch_checks = tonumber(s.watch_checks),
        watch_check_us = tonumber(s.watch_check_us),
        heap_objects = tonumber(s.heap_objects),
        heap_walk_us = tonumber(s.heap_walk_us),
        heap_slices = tonumber(s.heap_slices),
        heap_slice_max_us = tonumber(s.heap_slice_max_us),
    }
end

return _M
