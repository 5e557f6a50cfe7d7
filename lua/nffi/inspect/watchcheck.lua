-- Watching proves itself in this worker before the hook relies on it.
-- Hardware watchpoints (native/src/watch.c) are an optimisation of the
-- breakpoint hook, and a machine may accept the perf event and never deliver
-- its trap: then a breakpoint with no hook never fires. So the whole chain is
-- run on a probe function of ours, interpreted: a watchpoint on its first
-- instruction and no hook; the call reads that instruction, the trap puts the
-- call hook back before the call is dispatched, the call hook sees the probe
-- enter and turns line events on, and the probe's first line reaches the
-- hook. native/src/hook_watch.c (nffi_hook_watch_check_*) counts each step;
-- any step missing keeps the call hook, and the reason says which.
local jit = require "jit"
local native = require "nffi.native"

local ffi_string = require("ffi").string
local debug_getinfo = debug.getinfo
local next = next
local pcall = pcall
local ptr_of = native.ptr_of

local _M = { _VERSION = "0.1.0" }

local function probe(x)
    local y = x + 1
    return y
end

local function first_line(fn)
    local first
    for line in next, debug_getinfo(fn, "L").activelines do
        if not first or line < first then
            first = line
        end
    end
    return first
end

local PROBE_LINE = first_line(probe)

-- Runs the check in the running coroutine (no yield from begin to end).
-- C: libnffi; L: this coroutine's lua_State. fault: "no-trap" (the events
-- never enabled: what a machine that does not deliver does) or "emulate"
-- (no real event, a trap made by hand just before the call: the rest of the
-- chain, on any machine); tests only. true, or false and the reason.
function _M.run(C, L, fault)
    C.nffi_watch_fault(fault and 1 or 0)
    local rc = C.nffi_hook_watch_check_begin(L, ptr_of(probe), PROBE_LINE)
    if rc == 0 then
        if fault == "emulate" then
            C.nffi_watch_emulate_trap()
        end
        pcall(probe, 1)
        rc = C.nffi_hook_watch_check_end(L) == 1 and 1 or -1
    end
    C.nffi_watch_fault(0)
    if rc == 1 then
        return true
    end
    return false, ffi_string(C.nffi_hook_watch_reason())
end

-- interpreted, both: a trace would run the probe without reading its
-- first instruction
jit.off(probe)
jit.off(_M.run)

return _M
