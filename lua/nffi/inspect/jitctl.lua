-- JIT bookkeeping for breakpoints. Compiled traces never call hooks, so the
-- prototypes covering a breakpoint line are turned off (jit.off(proto): no
-- trace records or inlines them) and traces that may contain them are flushed.
-- First version: jit.flush() of every trace (the rest of the VM recompiles on
-- its own). While a hook is armed, any trace recording it interrupts aborts;
-- after ~11 aborts LuaJIT blacklists that loop for good and only
-- jit.on(func) undoes it, so every function whose trace aborted while armed is
-- recorded and turned on again when the last breakpoint goes.
-- Known limit: jit.util does not expose a prototype's own "JIT off" flag, so
-- a prototype the application had turned off itself is turned on at release.
local jit = jit
local jit_on = jit.on
local jit_off = jit.off
local jit_flush = jit.flush
local jit_attach = jit.attach
local next = next
local pcall = pcall

local _M = { _VERSION = "0.1.0" }

local offs = {}        -- proto or function -> reference count
local started = {}     -- trace number -> function it started in
local aborted = {}     -- function -> true
local watching = false
local stats = { off = 0, flushes = 0, aborts = 0, restored = 0 }
_M.stats = stats

local function on_trace(what, tr, func)
    if what == "start" then
        started[tr] = func
    elseif what == "abort" then
        stats.aborts = stats.aborts + 1
        local f = started[tr]
        if f then
            aborted[f] = true
        end
        if func then
            aborted[func] = true
        end
        started[tr] = nil
    elseif what == "stop" then
        started[tr] = nil
    end
end

function _M.watch()
    if not watching then
        watching = true
        jit_attach(on_trace, "trace")
    end
end

-- Turns JIT off for each object of list (functions or prototypes), once.
function _M.off(list)
    for i = 1, #list do
        local o = list[i]
        local n = offs[o]
        if not n then
            jit_off(o)
            stats.off = stats.off + 1
        end
        offs[o] = (n or 0) + 1
    end
end

function _M.flush()
    stats.flushes = stats.flushes + 1
    jit_flush()
end

-- Releases what off() took; turned on again at the last release.
function _M.release(list)
    for i = 1, #list do
        local o = list[i]
        local n = offs[o]
        if n then
            if n <= 1 then
                offs[o] = nil
                jit_on(o)
            else
                offs[o] = n - 1
            end
        end
    end
end

-- With no breakpoint left: every aborted function on again, watcher off.
function _M.restore_all()
    for o in next, offs do
        jit_on(o)
    end
    offs = {}
    if watching then
        watching = false
        jit_attach(on_trace)
    end
    for f in next, aborted do
        pcall(jit_on, f)
        stats.restored = stats.restored + 1
    end
    aborted = {}
    started = {}
end

function _M.active()
    return next(offs) ~= nil or watching
end

return _M
