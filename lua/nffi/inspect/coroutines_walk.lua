-- Finding every coroutine of the worker (coroutines.lua): the ones
-- lua-nginx-module anchors in its registry table (request entry threads,
-- light threads, timers) and the user coroutines reachable from their frames,
-- breadth first. Remembers where the last walk saw each one (its slot, the
-- anchored coroutine a user one was found from) for the request reads
-- (coroutines_request.lua).
local debug_getinfo = debug.getinfo
local debug_getlocal = debug.getlocal
local debug_getupvalue = debug.getupvalue
local debug_getregistry = debug.getregistry
local co_running = coroutine.running
-- lua-nginx-module keeps the LuaJIT builtins as coroutine._status/_yield
local co_status = rawget(coroutine, "_status") or coroutine.status
local type = type
local next = next
local pcall = pcall
local pairs = pairs
local rawget = rawget
local rawequal = rawequal
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }

local MAX_COROUTINES = 20000
local MAX_LEVELS = 200          -- frames walked to find the bottom of a stack
local USER_DEPTH = 8            -- user coroutines found from user coroutines, at most
local MAX_SCAN_LOCALS = 200     -- per frame, when looking for user coroutines
local MAX_SCAN_VARARGS = 20
local MAX_SCAN_UPVALUES = 60
_M.MAX_LEVELS = MAX_LEVELS

-- The registry table lua-nginx-module anchors its coroutines in (found once).
local anchor
-- Where the last walk saw each coroutine: anchored ones -> their slot in
-- anchor, user ones -> the anchored coroutine they were found from (weak
-- values too, or a root holding its user coroutine would keep both alive).
local slots = setmetatable({}, { __mode = "k" })
local roots = setmetatable({}, { __mode = "kv" })
_M.roots = roots

-- lua-nginx-module anchors with luaL_ref: coroutines sit at integer keys, a
-- freed slot holds the next free ref (an integer) and at most one slot holds
-- nil (luaL_unref stores the old free-list head, nil at first), so `#t` may
-- stop short. Walking by index (not `next`) stays valid across the yields that
-- keep each slice short, even while coroutines come and go; the walk ends
-- after a run of nils longer than any hole the free list can leave.
local NIL_RUN_END = 64

-- Calls fn(v, i) for t[i], i = 1, 2, ... until fn returns true (then returns true).
local function each_slot(t, fn, b)
    local nils, i = 0, 1
    while nils < NIL_RUN_END do
        local v = rawget(t, i)
        if rawequal(v, nil) then  -- a cdata's __eq never runs
            nils = nils + 1
        else
            nils = 0
            if fn(v, i) then
                return true
            end
        end
        i = i + 1
        b:step()
    end
    return false
end

local function threads_of(t, max, b)
    local out, n, truncated = {}, 0, false
    each_slot(t, function(v, i)
        if type(v) == "thread" then
            if n >= max then
                truncated = true
                return true
            end
            n = n + 1
            out[n] = v
            slots[v] = i
        end
    end, b)
    -- a trace may keep the closure as a constant: its upvalues must not keep
    -- the threads alive (see finder.collect)
    local list = out
    out = nil  -- luacheck: ignore 311 331
    return list, truncated
end

local function holds(t, co, b)
    local found = each_slot(t, function(v) return v == co end, b)
    co = nil  -- luacheck: ignore 311 (cleared for the closure's sake, as above)
    return found
end

-- The registry table holding our own (timer) coroutine is the anchor table.
local function find_anchor(b)
    if anchor then
        return anchor
    end
    local reg = debug_getregistry()
    local me = co_running()
    local tables = {}
    local ok, k, v = pcall(next, reg)
    while ok and not rawequal(k, nil) do
        if type(v) == "table" and not rawequal(v, reg) then
            tables[#tables + 1] = v
        end
        ok, k, v = pcall(next, reg, k)
    end
    for _, t in pairs(tables) do
        if holds(t, me, b) then
            anchor = t
            return t
        end
        b:check()
    end
    if holds(reg, me, b) then
        anchor = reg
        return reg
    end
    return nil, "cannot find lua-nginx-module's coroutine table in the registry"
end

-- Appends to found the threads among get(a, b, sign * i) for i = 1..max (a
-- local, a vararg or, with b nil, an upvalue), stopping at the first missing one.
local function push_threads(found, get, a, b, sign, max)
    for i = 1, max do
        local name, v
        if b == nil then
            name, v = get(a, sign * i)
        else
            name, v = get(a, b, sign * i)
        end
        if not name then
            return
        end
        if type(v) == "thread" then
            found[#found + 1] = v
        end
    end
end

-- Threads held directly in the locals, varargs and upvalues of co's frames.
local function scan_user(co, found, b)
    local base = co == co_running() and 2 or 0
    for level = base, MAX_LEVELS do
        local info = debug_getinfo(co, level, "f")
        if not info then
            break
        end
        push_threads(found, debug_getlocal, co, level, 1, MAX_SCAN_LOCALS)
        push_threads(found, debug_getlocal, co, level, -1, MAX_SCAN_VARARGS)
        if type(info.func) == "function" then
            push_threads(found, debug_getupvalue, info.func, nil, 1, MAX_SCAN_UPVALUES)
        end
        b:check()  -- each unit is large: read the clock every time
    end
end

-- Whether the last walk or index saw co anchored (a slot is known for it).
function _M.indexed(co)
    return slots[co] ~= nil
end

-- Records where each anchored coroutine sits, without the user coroutines a
-- walk finds from them: what a request read needs (serving) for coroutines no
-- walk has seen yet, such as an FFI task's waiter. Sliced by b; true when done.
function _M.index_anchored(b)
    local t = find_anchor(b)
    if not t then
        return false
    end
    threads_of(t, MAX_COROUTINES, b)
    return true
end

-- { {co=, kind=} ... }, truncated
function _M.collect(b)
    local t, err = find_anchor(b)
    if not t then
        return nil, err
    end
    local threads, truncated = threads_of(t, MAX_COROUTINES, b)
    b:check()
    local list, seen = {}, {}
    for i = 1, #threads do
        local v = threads[i]
        if not seen[v] then
            seen[v] = true
            list[#list + 1] = { co = v, depth = 0 }
        end
        b:step()
    end
    -- breadth first: user coroutines found from anchored ones, then from those
    local j = 1
    while j <= #list and not truncated do
        local e = list[j]
        if e.depth < USER_DEPTH then
            local found = {}
            scan_user(e.co, found, b)
            for _, uco in pairs(found) do
                if not seen[uco] then
                    if #list >= MAX_COROUTINES then
                        truncated = true
                        break
                    end
                    seen[uco] = true
                    local root = e.root or e.co
                    roots[uco] = root
                    list[#list + 1] = { co = uco, depth = e.depth + 1, user = true, root = root }
                end
            end
        end
        j = j + 1
    end
    return list, truncated
end

-- Whether co is still anchored in the slot the last walk saw it in, suspended
-- and started: the only coroutines whose request may be read (why:
-- coroutines_request.lua). started: whether co has a frame, when the caller knows
local function serving(co, started)
    local slot = slots[co]
    if slot == nil or anchor == nil or rawget(anchor, slot) ~= co
       or co_status(co) ~= "suspended" then
        return false
    end
    if started == nil then
        started = debug_getinfo(co, 0, "l") ~= nil
    end
    return started
end
_M.serving = serving

return _M
