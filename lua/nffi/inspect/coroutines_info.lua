-- What one coroutine is, from its own stack (coroutines.lua): its state (from
-- the thread itself, coroutine._status, the original LuaJIT builtin, not
-- lua-nginx-module's request-relative coroutine.status), its top frames, its
-- kind (request, timer, thread, or one of the agent's own) and what it waits
-- in. Wait reasons compare the functions in the top frames with the known
-- blocking functions, by identity: no guessing.
local json = require "nffi.inspect.json"
local walk = require "nffi.inspect.coroutines_walk"
local names = require "nffi.inspect.names"

local ngx = ngx
local debug_getinfo = debug.getinfo
local debug_getlocal = debug.getlocal
local co_running = coroutine.running
-- lua-nginx-module keeps the LuaJIT builtins as coroutine._status/_yield
local co_status = rawget(coroutine, "_status") or coroutine.status
local type = type
local next = next
local pcall = pcall
local pairs = pairs
local rawget = rawget
local setmetatable = setmetatable
local str_byte = string.byte
local str_sub = string.sub
local array = json.array

local _M = { _VERSION = "0.1.0" }

local MAX_LEVELS = walk.MAX_LEVELS  -- frames walked to find the bottom of a stack
local WAIT_LEVELS = 6           -- top frames searched for a blocking function

-- function -> { kind, detail }; built once per session (needs a cosocket context)
local known
-- the nffi binding's waiting function: its frame holds the task id in local `id`
local nffi_wait
-- functions of the agent itself, to name its own coroutines: fn -> kind
local own = setmetatable({}, { __mode = "k" })

function _M.mark_own(fn, kind)
    own[fn] = kind
end
-- the names index builds in a timer of its own when no walk built it (names.lua)
own[names.build_timer] = "timer"

-- Ends a session: drops the caches it built.
function _M.reset()
    known = nil
    nffi_wait = nil
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

local name_of = names.name_of

-- One frame (info from debug.getinfo with "nSlf"): the name a reader would use
-- (names.lua), the one LuaJIT gives (the caller's variable) as called_as when
-- it differs, and where the function is defined. co, caller: the level of the
-- calling frame in co, so names can be looked for there; co nil: in the
-- running coroutine, caller as the caller of frame_of counts levels; caller
-- nil: no calling frame read.
local function frame_of(info, co, caller)
    local fn_name = name_of(info, co, caller and (co and caller or caller + 1))
    local f = {
        ["function"] = fn_name,
        source = source_of(info),
        line = info.currentline or -1,
        linedefined = info.linedefined or -1,
        what = info.what,
    }
    local raw = info.name
    if raw and raw ~= fn_name then
        f.called_as = raw
    end
    return f
end
_M.frame_of = frame_of

-- Top frames first. The agent's own running coroutine starts below this call.
-- b: the walk's budget, when the names index may be built (names.prepare).
-- skip (plumbing.lua's matcher, optional): start at the first frame that is
-- neither a C function nor from a chunk it matches, within SKIP_LEVELS of the
-- top; returns the frames and how many were skipped. A stack with no such frame
-- there starts at the top as usual (skipped 0).
local SKIP_LEVELS = 16
local function frames_of(co, n, b, skip)
    local out = array()
    if n <= 0 then
        return out, 0
    end
    names.prepare(b)
    local base = co == co_running() and 2 or 0
    local skipped = 0
    if skip then
        for level = base, base + SKIP_LEVELS - 1 do
            local info = debug_getinfo(co, level, "S")
            if not info then
                break
            end
            if info.what ~= "C" and not skip(info.source) then
                skipped = level - base
                break
            end
        end
    end
    local top = base + skipped
    for level = top, top + n - 1 do
        local info = debug_getinfo(co, level, "nSlf")
        if not info then
            break
        end
        out[#out + 1] = frame_of(info, co, level + 1)
    end
    return out, skipped
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

return _M
