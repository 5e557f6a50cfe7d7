-- JIT bookkeeping for breakpoints. Compiled traces never call hooks, so the
-- prototypes covering a breakpoint line are turned off (jit.off(proto): no
-- trace records or inlines them) and traces that may contain them are flushed.
-- Only the traces that can run the breakpoint line are flushed (flush_covering):
-- jit.off(proto) already flushes the root traces that start in a prototype, and
-- a trace that inlined a Lua function guards on it with a constant (the
-- function, or its prototype for polymorphic closures), which jit.util.tracek
-- shows. jit.flush(tr) only unpatches a root trace's start: its code still
-- runs from traces that link to it, and side traces run from their parents,
-- so the traces linking in and the known parents are cut too (lineage comes
-- from trace events seen during the session; jit.util cannot name a side
-- trace's root, so a trace of unknown lineage that is not a looping root means
-- flushing everything). Traces elsewhere keep running compiled (a flushed
-- root stays listed by traceinfo until the next GC cycle frees it, and its
-- number is reused after that, so every match is flushed again rather than
-- remembered). While a hook is
-- armed, any trace recording it interrupts aborts; after ~11 aborts LuaJIT
-- blacklists that loop for good and only jit.on(func) undoes it, so every
-- function whose trace aborted while armed is recorded and turned on again
-- when the last breakpoint goes.
-- Only the function a trace started in is penalised, so only that one is
-- turned on again: a function the application turned off, where a trace
-- stopped ("JIT compilation disabled for function", jit.vmdef), is left off
-- (jit.util does not expose a prototype's own "JIT off" flag).
local jit = jit
local jit_on = jit.on
local jit_off = jit.off
local jit_flush = jit.flush
local vmevents = require "nffi.inspect.vmevents"
local jutil = require "jit.util"
local funcinfo = jutil.funcinfo
local traceinfo = jutil.traceinfo
local tracek = jutil.tracek
local type = type
local setmetatable = setmetatable
local next = next
local pcall = pcall
local os_clock = os.clock

-- the abort code for a call into a function with JIT off (nil: unknown here)
local JITOFF_ERR
do
    local ok, vmdef = pcall(require, "jit.vmdef")
    local errs = ok and type(vmdef) == "table" and vmdef.traceerr
    if type(errs) == "table" then
        for code, msg in next, errs do
            if msg == "JIT compilation disabled for function" then
                JITOFF_ERR = code
            end
        end
    end
end

local _M = { _VERSION = "0.1.0" }

local offs = {}        -- proto or function -> reference count
local started = {}     -- trace number -> function it started in
local aborted = {}     -- function -> true
local watching = false -- aborts are recorded (a breakpoint is armed)
local tracking = false -- trace events are seen (a session is open)
-- trace number -> parent trace (side and stitched traces) or 0 (roots), for
-- the traces compiled while tracking; others are unknown
local parent_of = {}
local stats = { off = 0, flushes = 0, full_flushes = 0, trace_flushes = 0, aborts = 0,
                restored = 0, scan_us = 0 }
_M.stats = stats

local turned_off  -- defined with key_of, below

local function on_trace(what, tr, func, _, otr)
    if what == "start" then
        parent_of[tr] = otr or 0
        if watching then
            started[tr] = func
        end
    elseif not watching then
        return
    elseif what == "abort" then
        stats.aborts = stats.aborts + 1
        -- LuaJIT penalises (and at last blacklists) the bytecode the trace
        -- started at, so that function is the one to turn on again; where
        -- the recording stopped (func) stands in only when the start was not
        -- seen, and never when it stopped because func has JIT off (otr: the
        -- error code), which is the application's doing unless it is ours
        local f = started[tr]
        if not f and func and (otr ~= JITOFF_ERR or turned_off(func)) then
            f = func
        end
        if f then
            aborted[f] = true
        end
        started[tr] = nil
    elseif what == "stop" then
        started[tr] = nil
    end
end

local function attach()
    if tracking or watching then
        vmevents.attach("trace", on_trace)
    else
        vmevents.detach("trace", on_trace)
    end
end

-- Session open/closed: lineage of the traces compiled meanwhile (flush_covering).
function _M.track(on)
    if on ~= tracking then
        tracking = on
        if not on then
            parent_of = {}
        end
        attach()
    end
end

function _M.watch()
    if not watching then
        watching = true
        attach()
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
    stats.full_flushes = stats.full_flushes + 1
    jit_flush()
end

local MAX_TRACE = 65535
local MAX_GAP = 1000       -- trace numbers are reused lowest first: live ones are dense

local keys_of = setmetatable({}, { __mode = "k" })  -- function or proto -> key | false

-- "source:linedefined:lastlinedefined" of a Lua function or prototype; false
-- for a C function.
local function key_of(o)
    local k = keys_of[o]
    if k == nil then
        local info = funcinfo(o)
        local src = info.source
        k = src and src .. ":" .. info.linedefined .. ":" .. info.lastlinedefined or false
        keys_of[o] = k
    end
    return k
end
_M.key_of = key_of

-- Whether we turned func's prototype off (offs holds functions and prototypes).
turned_off = function(func)
    local k = key_of(func)
    for o in next, offs do
        if o == func or key_of(o) == k then
            return true
        end
    end
    return false
end

-- Flushes the traces that may run code of the objects of list (functions or
-- prototypes, already turned off with off()): those holding them, grown by
-- every trace that links into the set and every known parent, each root of it
-- flushed; everything when one of unknown lineage is not a looping root.
-- b: a budget (budget.lua) to yield between traces, or nil to scan in one go.
-- Yielding is safe: list is off already (jit.off), so no trace made meanwhile
-- holds it, and a number flushed and reused meanwhile costs one needless flush.
function _M.flush_covering(list, b)
    stats.flushes = stats.flushes + 1
    local t0 = os_clock()
    local keys = {}
    for i = 1, #list do
        local k = key_of(list[i])
        if k then
            keys[k] = true
        end
    end
    local live, cut, gap, ntr, nk = {}, {}, 0, 0, 0
    for tr = 1, MAX_TRACE do
        local info = traceinfo(tr)
        if not info then
            gap = gap + 1
            if gap > MAX_GAP then
                break
            end
        else
            if b then
                b:step()
            end
            gap = 0
            ntr = ntr + 1
            nk = nk + info.nk
            live[tr] = info
            -- a step per constant, not per trace: a trace holds up to
            -- hundreds, and 32 traces between clock reads held the worker 4 ms
            for idx = -info.nk, -1 do
                local k = tracek(tr, idx)
                local t = type(k)
                if (t == "function" or t == "proto") and keys[key_of(k)] then
                    cut[tr] = true
                    break
                end
                if b then
                    b:step()
                end
            end
        end
    end
    local grown = next(cut) ~= nil
    while grown do
        grown = false
        for tr, info in next, live do
            if not cut[tr] and cut[info.link] then
                cut[tr], grown = true, true
            end
        end
        for tr in next, cut do
            local p = parent_of[tr]
            if p and p ~= 0 and live[p] and not cut[p] then
                cut[p], grown = true, true
            end
        end
    end
    local full, roots = false, {}
    for tr in next, cut do
        local p = parent_of[tr]
        if p == 0 or (p == nil and live[tr].linktype == "loop") then
            roots[#roots + 1] = tr
        elseif p == nil then
            full = true
            break
        end
    end
    if full then
        _M.flush()
        stats.flushes = stats.flushes - 1
    else
        -- flushed again even if we flushed this number before: numbers are
        -- reused once a flushed trace is freed, and flushing a root twice is
        -- harmless
        for i = 1, #roots do
            jit_flush(roots[i])
        end
        stats.trace_flushes = stats.trace_flushes + #roots
    end
    stats.scan_us = (os_clock() - t0) * 1e6
    stats.scan_traces, stats.scan_consts = ntr, nk
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
        attach()
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
