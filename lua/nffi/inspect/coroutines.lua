-- Every coroutine of the worker: the ones lua-nginx-module anchors in its
-- registry table (request entry threads, light threads, timers) and the user
-- coroutines reachable from their frames. States come from the thread itself
-- (coroutine._status, the original LuaJIT builtin), not from lua-nginx-module's
-- request-relative coroutine.status. Wait reasons compare the functions in the
-- top frames with the known blocking functions, by identity: no guessing.
local json = require "nffi.inspect.json"
local native = require "nffi.native"
local ffi = require "ffi"

local ngx = ngx
local timer_pending_count = ngx.timer.pending_count
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
local tonumber = tonumber
local rawget = rawget
local rawequal = rawequal
local setmetatable = setmetatable
local str_byte = string.byte
local str_sub = string.sub
local math_min = math.min
local array = json.array
local ffi_new = ffi.new
local ffi_string = ffi.string
local ptr_of = native.ptr_of
-- LuaJIT 2.1's preallocating constructor; a plain table elsewhere
local ok_new, table_new = pcall(require, "table.new")
if not ok_new then
    table_new = function() return {} end
end

local _M = { _VERSION = "0.1.0" }

local MAX_COROUTINES = 20000
local MAX_LEVELS = 200          -- frames walked to find the bottom of a stack
local WAIT_LEVELS = 6           -- top frames searched for a blocking function
local USER_DEPTH = 8            -- user coroutines found from user coroutines, at most
local MAX_SCAN_LOCALS = 200     -- per frame, when looking for user coroutines
local MAX_SCAN_VARARGS = 20
local MAX_SCAN_UPVALUES = 60
local DEFAULT_FRAMES = 3
local MAX_FRAMES = 50
local MAX_URI = 1024            -- bytes of $request_uri shown per coroutine

-- coroutine <-> id, stable for the worker's lifetime (weak on both sides, so
-- nothing is kept alive): `coroutines PID` then `stack PID ID` are two sessions.
-- coroutine -> id lives in generations, each made at its final size and never
-- written once full: one table that grows rehashes every key in one step
-- (4 ms at 65,536 coroutines). A lookup tries the newest first; generations
-- whose coroutines are all gone are dropped when a new one starts.
local GEN_FIRST = 256
local GEN_MAX = 8192
local weak_k = { __mode = "k" }
local gens = {}
local gen_size, gen_used = 0, 0
local by_id = setmetatable({}, { __mode = "v" })
local next_id = 0

-- The registry table lua-nginx-module anchors its coroutines in (found once).
local anchor
-- Where the last walk saw each coroutine: anchored ones -> their slot in
-- anchor, user ones -> the anchored coroutine they were found from (weak
-- values too, or a root holding its user coroutine would keep both alive).
local slots = setmetatable({}, { __mode = "k" })
local roots = setmetatable({}, { __mode = "kv" })
-- The last request read, reused for the next coroutine with the same request
-- pointer while the event loop has not run since (same slice of the same
-- walk): the light threads of one request come in runs.
local last_x, last_req, last_b, last_yields

-- function -> { kind, detail }; built once per session (needs a cosocket context)
local known
-- the nffi binding's waiting function: its frame holds the task id in local `id`
local nffi_wait
-- functions of the agent itself, to name its own coroutines: fn -> kind
local own = setmetatable({}, { __mode = "k" })

function _M.mark_own(fn, kind)
    own[fn] = kind
end

local function new_gen()
    local kept = {}
    for i = 1, #gens do
        if next(gens[i]) ~= nil then
            kept[#kept + 1] = gens[i]
        end
    end
    gen_size = gen_size == 0 and GEN_FIRST or math_min(gen_size * 2, GEN_MAX)
    kept[#kept + 1] = setmetatable(table_new(0, gen_size), weak_k)
    gens, gen_used = kept, 0
end

function _M.id_of(co)
    for i = #gens, 1, -1 do
        local id = gens[i][co]
        if id then
            return id
        end
    end
    if gen_used == gen_size then
        new_gen()
    end
    next_id = next_id + 1
    gens[#gens][co] = next_id
    gen_used = gen_used + 1
    by_id[next_id] = co
    return next_id
end

function _M.by_id(id)
    return by_id[id]
end

-- Ends a session: drops the caches it built. Ids stay (see above).
function _M.reset()
    known = nil
    nffi_wait = nil
    last_x, last_req, last_b = nil, nil, nil
end

local function source_of(info)
    local src = info.source or "?"
    if str_byte(src, 1) == 64 then  -- '@'
        return str_sub(src, 2)
    end
    return src
end
_M.source_of = source_of

local function add_known(map, fn, kind, detail)
    if type(fn) == "function" and not map[fn] then
        map[fn] = { kind = kind, detail = detail }
    end
end

local function add_methods(map, obj, kind)
    local mt = obj and debug.getmetatable(obj)
    if type(mt) ~= "table" then
        return
    end
    local idx = rawget(mt, "__index")
    for _, t in pairs({ mt, type(idx) == "table" and idx or nil }) do
        for name, fn in next, t do
            if type(name) == "string" and str_byte(name, 1) ~= 95 then  -- not "__*"
                add_known(map, fn, kind, name)
            end
        end
    end
end

local function build_known()
    local map = {}
    add_known(map, ngx.sleep, "ngx.sleep")
    add_known(map, ngx.thread.wait, "thread.wait")
    add_known(map, ngx.location.capture, "subrequest", "capture")
    add_known(map, ngx.location.capture_multi, "subrequest", "capture_multi")
    add_known(map, ngx.socket.connect, "cosocket", "connect")
    local ok, tcp = pcall(ngx.socket.tcp)
    if ok then
        add_methods(map, tcp, "cosocket")
    end
    local ok2, udp = pcall(ngx.socket.udp)
    if ok2 then
        add_methods(map, udp, "cosocket")
    end
    local ok3, semaphore = pcall(require, "ngx.semaphore")
    if ok3 and type(semaphore) == "table" then
        add_known(map, semaphore.wait, "semaphore", "wait")
        local ok4, sema = pcall(semaphore.new, 0)
        if ok4 and sema then
            add_known(map, sema.wait, "semaphore", "wait")
        end
    end
    -- yielding to the resumer: not a wait kind of its own, the weakest match
    add_known(map, coroutine.yield, "unknown", "coroutine.yield")
    add_known(map, rawget(coroutine, "_yield"), "unknown", "coroutine.yield")
    add_known(map, rawget(coroutine, "__yield"), "unknown", "coroutine.yield")
    local nffi = package.loaded["nffi"]
    nffi_wait = type(nffi) == "table" and nffi._wait_ready or nil
    return map
end

local function task_id_of(co, level)
    for i = 1, 50 do
        local name, v = debug_getlocal(co, level, i)
        if not name then
            return nil
        end
        if name == "id" and type(v) == "number" then
            return v
        end
    end
    return nil
end

-- What a suspended coroutine waits in, from its top frames.
local function wait_of(co)
    if not known then
        known = build_known()
    end
    local found
    for level = 0, WAIT_LEVELS - 1 do
        local info = debug_getinfo(co, level, "f")
        if not info then
            break
        end
        local fn = info.func
        if fn == nffi_wait and fn ~= nil then
            return { kind = "ffi", task_id = task_id_of(co, level) }
        end
        local k = known[fn]
        if k and (not found or found.kind == "unknown") then
            found = k
        end
    end
    if found then
        return { kind = found.kind, detail = found.detail }
    end
    return { kind = "unknown" }
end
_M.wait_of = wait_of

local function frame_of(info)
    return {
        ["function"] = info.name or "?",
        source = source_of(info),
        line = info.currentline or -1,
        what = info.what,
    }
end
_M.frame_of = frame_of

-- Top frames first. The agent's own running coroutine starts below this call.
local function frames_of(co, n)
    local out = array()
    local base = co == co_running() and 2 or 0
    for level = base, base + n - 1 do
        local info = debug_getinfo(co, level, "nSl")
        if not info then
            break
        end
        out[#out + 1] = frame_of(info)
    end
    return out
end
_M.frames_of = frames_of

local function state_of(co)
    if co == co_running() then
        return "running"
    end
    return co_status(co)
end
_M.state_of = state_of

-- request / timer / thread, for an anchored coroutine. lua-nginx-module calls a
-- timer callback with `premature` (a boolean) first; a light thread gets the
-- arguments of ngx.thread.spawn. So the first argument of the bottom frame
-- tells them apart, when the function declares one (or takes varargs).
local function anchored_kind(co)
    local bottom, info
    for level = 0, MAX_LEVELS do
        local i = debug_getinfo(co, level, "Su")
        if not i then
            break
        end
        bottom, info = level, i
    end
    if not info then
        return "thread"
    end
    if info.what == "main" then
        return "request"
    end
    local f = debug_getinfo(co, bottom, "f")
    local mine = f and own[f.func]
    if mine then
        return mine, true
    end
    local first
    if (info.nparams or 0) >= 1 then
        local _, v = debug_getlocal(co, bottom, 1)
        first = v
    elseif info.isvararg then
        local _, v = debug_getlocal(co, bottom, -1)
        first = v
    end
    if type(first) == "boolean" then
        return "timer"
    end
    return "thread"
end
_M.anchored_kind = anchored_kind

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

-- The request a coroutine serves. lua-nginx-module keeps it in the
-- coroutine's exdata, which LuaJIT copies from the parent thread, so many
-- coroutines carry a dangling one: a timer's coroutine is created and anchored
-- when the timer is set, with the main state's exdata (init_worker's freed
-- fake request), and gets its own only when it fires; a user coroutine keeps
-- the request it was created in after that request is gone. Following such a
-- pointer killed the worker (SIGSEGV). It is followed only for a coroutine
-- that is anchored and has started (a frame on its stack), checked right
-- before the read with no yield in between: a request's cleanup unanchors all
-- of its coroutines before the request is freed, a thread is reset (no
-- frames) before lua-nginx-module caches it anchored for reuse, and a timer's
-- fake request lives until its coroutine ends. A user coroutine's pointer is
-- only compared: it shows the request of the anchored coroutine it was found
-- from when both carry the same one.
local req_lib               -- libnffi if the host's request functions resolved, else false
local method_p = ffi_new("const char *[1]")
local method_len = ffi_new("size_t[1]")
local uri_p = ffi_new("const char *[1]")
local uri_len = ffi_new("size_t[1]")

local function request_lib()
    if req_lib == nil then
        local ok, lib = pcall(native.lib)
        req_lib = ok and lib.nffi_request_available() == 1 and lib or false
    end
    return req_lib or nil
end

-- started: whether co has a frame, when the caller knows
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

-- { method, uri } or nil (unknown, or no client request: timers). b: the
-- walk's budget, when reads may be shared within its slice.
local function request_of(co, started, b)
    local C = request_lib()
    if not C then
        return nil
    end
    local p
    if serving(co, started) then
        p = ptr_of(co)
    else
        local root = roots[co]
        if not root or not serving(root) then
            return nil
        end
        p = ptr_of(root)
        local up = ptr_of(co)
        if not p or not up or C.nffi_co_exdata(up) ~= C.nffi_co_exdata(p) then
            return nil
        end
    end
    if not p then
        return nil
    end
    local x
    if b then
        x = C.nffi_co_exdata(p)
        if b == last_b and b.yields == last_yields and x == last_x then
            return last_req
        end
    end
    local req
    if C.nffi_co_request(p, method_p, method_len, uri_p, uri_len) == 0
       and method_p[0] ~= nil then
        local n = tonumber(uri_len[0])
        local uri = uri_p[0] ~= nil and ffi_string(uri_p[0], n < MAX_URI and n or MAX_URI) or ""
        req = { method = ffi_string(method_p[0], method_len[0]), uri = uri }
    end
    if b then
        last_x, last_req, last_b, last_yields = x, req, b, b.yields
    end
    return req
end
_M.request_of = request_of

-- nil for the agent's own coroutines: the inspector does not show itself
function _M.describe(e, nframes, b)
    local co = e.co
    local kind, mine = "user", false
    if not e.user then
        kind, mine = anchored_kind(co)
    end
    if mine then
        return nil
    end
    local state = state_of(co)
    local out = {
        id = _M.id_of(co),
        kind = kind,
        state = state,
        frames = frames_of(co, nframes),
    }
    -- a frame listed: it has started (saves a debug.getinfo per coroutine)
    local started = nframes > 0 and out.frames[1] ~= nil or nil
    if state == "suspended" then
        out.wait = wait_of(co)
    end
    out.request = request_of(co, started, b)
    -- anchored and never run: a timer not fired yet, or an ngx.on_abort handler
    local unstarted = kind == "thread" and state == "suspended"
        and not (started or debug_getinfo(co, 0, "l"))
    return out, unstarted
end

-- Lua.getCoroutines
function _M.get_coroutines(params, b)
    local nframes = params.frames
    if nframes == nil then
        nframes = DEFAULT_FRAMES
    end
    -- (link.lua checked it already; this holds for direct callers too)
    if type(nframes) ~= "number" or nframes ~= nframes or nframes < 0
       or nframes ~= math.floor(nframes) then
        return nil, "frames must be a non-negative integer"
    end
    if nframes > MAX_FRAMES then
        nframes = MAX_FRAMES
    end
    local pending = timer_pending_count()
    local list, truncated = _M.collect(b)
    if not list then
        return nil, truncated
    end
    local out, unstarted = array(), {}
    for i = 1, #list do
        local c, never_ran = _M.describe(list[i], nframes, b)
        out[#out + 1] = c
        if never_ran then
            unstarted[#unstarted + 1] = c
        end
        b:check()  -- each unit is large: read the clock every time
    end
    -- Coroutines that never ran look alike whether they belong to a pending
    -- timer or to an ngx.on_abort handler. When there are exactly as many as
    -- lua-nginx-module counts pending timers, before and after the walk, they
    -- are all timers; otherwise they stay threads (no guess).
    if #unstarted > 0 and not truncated and timer_pending_count() == pending
       and pending == #unstarted then
        for i = 1, #unstarted do
            unstarted[i].kind = "timer"
        end
    end
    local res = { coroutines = out }
    if truncated then
        res.truncated = true
    end
    return res
end

return _M
