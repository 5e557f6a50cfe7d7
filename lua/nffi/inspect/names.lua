-- Names a reader would use for the function of a frame. LuaJIT names a
-- function after the caller's variable (`h` for handlers.slow called as
-- `h()`) and gives nothing for the entry function of a timer, a light thread
-- or a coroutine. Here a function is named, best first, by:
--   1. a loaded module's field (package.loaded, one level): `demo_app.handle`,
--      `ngx.sleep` (and ngx's sub-tables: `ngx.thread.spawn`; a C function
--      keeps the name LuaJIT gives it, when it has one);
--   2. a table field reached from those functions' upvalues, or from the
--      calling frame's upvalues and locals: `handlers.slow`;
--   3. an upvalue holding it (`park_timer`), from the same places (an
--      `_internal` module field comes after these);
--   4. a local of the calling frame holding it (`h`);
-- else what Lua's traceback says: `main chunk`, the name LuaJIT found,
-- `function <file.lua:39>`.
-- The functions reachable from loaded modules (their upvalues, and the
-- upvalues of the functions found there, breadth first) make an index, built
-- in budgeted slices by the walks that may yield (prepare) and used by all;
-- hooks (breakpoint hits) never build it. Reads are raw (next, rawget,
-- debug.getupvalue): no metamethod of an application table runs.
-- Names found are cached per function (weak keys); a function no place names
-- is cached per prototype (source, linedefined), so closures made anew for
-- every request cost one lookup in all.
local debug_getinfo = debug.getinfo
local debug_getlocal = debug.getlocal
local debug_getupvalue = debug.getupvalue
local type = type
local next = next
local pcall = pcall
local rawequal = rawequal
local setmetatable = setmetatable
local str_byte = string.byte
local str_find = string.find
local ngx_now = ngx.now
local timer_at = ngx.timer.at
local budget = require "nffi.inspect.budget"

local _M = { _VERSION = "0.1.0" }

local MAX_MODULE_KEYS = 500     -- fields of one loaded module read for the index
local MAX_TABLE_KEYS = 200      -- fields of a table found in an upvalue
local MAX_FUNCTIONS = 20000     -- functions whose upvalues the index reads
local MAX_UPVALUES = 60
local MAX_LOCALS = 200
local CONTEXT_STEPS = 400       -- reads one look at a calling frame may take
local CONTEXT_KEYS = 64         -- fields of one table a calling frame holds
local STALE_S = 30              -- an index older than this is rebuilt after a miss
local MAX_SOURCES = 4096        -- prototypes cached by source, before the cache restarts

local weak_k = { __mode = "k" }

-- fn -> name, fn -> rank (1 best); nil until first built; the loaded
-- modules' tables (weak keys)
local index, ranks, module_set
local built_at, misses = 0, 0
-- when the build under way began (false: none); a walk ended while it
-- yielded (its session closed) leaves it set: after BUILD_ABANDONED_S
-- another walk builds
local building = false
local BUILD_ABANDONED_S = 5
-- fn -> name found from a calling frame
local by_fn = setmetatable({}, weak_k)
-- source -> { [linedefined] = name }: prototypes no place names
local by_proto, nsources = {}, 0

local function is_ident(s)
    return type(s) == "string" and str_find(s, "^[%a_][%w_]*$") ~= nil
end

-- Whether name (at rank) is better than the one held (at held_rank).
local function better(rank, name, held_rank, held)
    if held == nil or rank < held_rank then
        return true
    end
    -- same rank: a public name over an `_internal` one
    return rank == held_rank and str_byte(held, 1) == 95 and str_byte(name, 1) ~= 95
end

local function put(idx, rk, fn, name, rank)
    if better(rank, name, rk[fn], idx[fn]) then
        idx[fn] = name
        rk[fn] = rank
        return true
    end
    return false
end

-- Calls fn(k, v) for up to max raw entries of t (k an identifier); counts steps.
local function each_field(t, max, fn, b)
    local n = 0
    local ok, k, v = pcall(next, t)
    while ok and not rawequal(k, nil) and n < max do
        n = n + 1
        if is_ident(k) then
            fn(k, v)
        end
        if b then
            b:step()
        end
        ok, k, v = pcall(next, t, k)
    end
end

-- The index: functions of loaded modules, then what their upvalues hold.
local function build(b)
    local idx = setmetatable({}, weak_k)
    local rk = setmetatable({}, weak_k)
    local queue, seen, nq = {}, setmetatable({}, weak_k), 0
    local modules = {}
    local function found(fn, name, rank)
        if put(idx, rk, fn, name, rank) and not seen[fn] and nq < MAX_FUNCTIONS then
            seen[fn] = true
            nq = nq + 1
            queue[nq] = fn
        end
    end
    local loaded = package.loaded
    local ok, mname, mod = pcall(next, loaded)
    while ok and not rawequal(mname, nil) do
        if type(mname) == "string" and type(mod) == "table" and not modules[mod] then
            modules[mod] = true
            local prefix = mname == "_G" and "" or mname .. "."
            each_field(mod, MAX_MODULE_KEYS, function(k, v)
                if type(v) == "function" then
                    -- an `_internal` export names it less well than the
                    -- local it was defined as (wait_ready, not nffi.call._wait_ready)
                    found(v, prefix .. k, str_byte(k, 1) == 95 and 3.5 or 1)
                elseif mname == "ngx" and type(v) == "table" then
                    each_field(v, MAX_TABLE_KEYS, function(k2, v2)
                        if type(v2) == "function" then
                            found(v2, "ngx." .. k .. "." .. k2, 1)
                        end
                    end, b)
                end
            end, b)
        end
        ok, mname, mod = pcall(next, loaded, mname)
    end
    -- breadth first through upvalues: shallower names first
    local i = 1
    while i <= nq do
        local fn = queue[i]
        queue[i] = false
        i = i + 1
        for u = 1, MAX_UPVALUES do
            local name, v = debug_getupvalue(fn, u)
            if not name then
                break
            end
            if type(v) == "function" and is_ident(name) then
                found(v, name, 3)
            elseif type(v) == "table" and is_ident(name) and not modules[v] then
                each_field(v, MAX_TABLE_KEYS, function(k, f)
                    if type(f) == "function" then
                        found(f, name .. "." .. k, 2)
                    end
                end, b)
            end
            if b then
                b:step()
            end
        end
    end
    local mset = setmetatable({}, weak_k)
    for m in next, modules do
        mset[m] = true
    end
    return idx, rk, mset
end

-- Builds (or renews) the index; b: the caller's budget (this may yield).
-- Only one build runs at a time: a walk that comes meanwhile uses the old one.
function _M.prepare(b)
    if not b or (building and ngx_now() - building < BUILD_ABANDONED_S) then
        return
    end
    if index and (misses == 0 or ngx_now() - built_at < STALE_S) then
        return
    end
    building = ngx_now()
    local ok, idx, rk, mset = pcall(build, b)
    building = false
    if ok then
        index, ranks, module_set, built_at, misses = idx, rk, mset, ngx_now(), 0
        by_fn = setmetatable({}, weak_k)
        by_proto, nsources = {}, 0
    end
end

-- A frame named where no walk runs (a breakpoint hit's hook, the tasks
-- list) before any walk built the index: build it in a timer of the agent's
-- own, in slices like a walk, so the frames named after it get module names.
local scheduled = false

local function build_timer(premature)
    scheduled = false
    if premature then
        return
    end
    _M.prepare(budget.new())
end
_M.build_timer = build_timer  -- marked as the agent's own (coroutines_info.lua)

local function schedule_build()
    if scheduled or building then
        return
    end
    scheduled = true
    local ok = pcall(timer_at, 0, build_timer)
    if not ok then
        scheduled = false
    end
end

-- The best name the calling frame (co's frame at level) gives fn, and its rank.
-- co nil: the running coroutine (a hook), level as the caller of this sees it.
local function from_caller(fn, co, level)
    local name, rank
    local steps = 0
    local function consider(vname, v)
        if rawequal(v, fn) then
            return vname
        end
        if type(v) == "table" and (rank == nil or rank > 2) then
            local n = 0
            local ok, k, f = pcall(next, v)
            while ok and not rawequal(k, nil) and n < CONTEXT_KEYS and steps < CONTEXT_STEPS do
                n, steps = n + 1, steps + 1
                if rawequal(f, fn) and is_ident(k) then
                    name, rank = vname .. "." .. k, 2
                    return nil
                end
                ok, k, f = pcall(next, v, k)
            end
        end
        return nil
    end
    local info
    if co then
        info = debug_getinfo(co, level, "f")
    else
        info = debug_getinfo(level + 1, "f")
    end
    local caller = info and info.func
    if type(caller) ~= "function" then
        return nil
    end
    for u = 1, MAX_UPVALUES do
        local vname, v = debug_getupvalue(caller, u)
        if not vname or steps >= CONTEXT_STEPS then
            break
        end
        steps = steps + 1
        if is_ident(vname) then
            local direct = consider(vname, v)
            if direct and (rank == nil or rank > 3) then
                name, rank = direct, 3
            end
        end
    end
    for l = 1, MAX_LOCALS do
        if steps >= CONTEXT_STEPS then
            break
        end
        local vname, v
        if co then
            vname, v = debug_getlocal(co, level, l)
        else
            vname, v = debug_getlocal(level + 1, l)
        end
        if not vname then
            break
        end
        steps = steps + 1
        if is_ident(vname) then
            local direct = consider(vname, v)
            if direct and (rank == nil or rank > 4) then
                name, rank = direct, 4
            end
        end
    end
    return name, rank
end

local function short_source(info)
    local src = info.source or "?"
    local c = str_byte(src, 1)
    if c == 64 or c == 61 then  -- '@' file, '=' named chunk
        return src:sub(2)
    end
    return info.short_src or src
end

-- What Lua's traceback says: the name LuaJIT found, else where it is defined.
local function fallback(info)
    if info.what == "main" then
        return "main chunk"
    elseif info.name then
        return info.name
    elseif info.what == "C" then
        return "?"
    end
    return "function <" .. short_source(info) .. ":" .. (info.linedefined or "?") .. ">"
end

local function proto_name(info)
    local src = info.source
    local t = src and by_proto[src]
    return t and t[info.linedefined]
end

local function remember_proto(info, name)
    local src = info.source
    if not src then
        return
    end
    local t = by_proto[src]
    if not t then
        if nsources >= MAX_SOURCES then
            by_proto, nsources = {}, 0
        end
        t = {}
        by_proto[src] = t
        nsources = nsources + 1
    end
    t[info.linedefined] = name
end

-- The name of the function of a frame (info from debug.getinfo with "nSf").
-- co, level: where the frame's caller is (co nil: the running coroutine, a
-- level as the caller of this function sees it), or nil (no caller read).
function _M.name_of(info, co, level)
    if info.what == "main" then
        return "main chunk"
    end
    local fn = info.func
    if type(fn) ~= "function" then
        return fallback(info)
    end
    -- a C function keeps the name it is called by (co_yield, receive): the
    -- wait kinds name what it is; the index names only nameless ones
    if info.what == "C" then
        return info.name or (index and index[fn]) or "?"
    end
    if not index then
        schedule_build()
    end
    local name = index and index[fn]
    local rank = name and ranks[fn] or 99
    if rank <= 1 then
        return name
    end
    local cached = by_fn[fn]
    if cached then
        return cached
    end
    if not name then
        local pname = proto_name(info)
        if pname then
            return pname
        end
    end
    if level and rank > 2 then
        local cname, crank = from_caller(fn, co, level and (co and level or level + 1))
        if cname and crank < rank then
            name = cname
        end
    end
    -- one look per function: the name stays what it was first found to be
    -- (until the index is rebuilt)
    if name then
        by_fn[fn] = name
        return name
    end
    local fb = fallback(info)
    by_fn[fn] = fb
    remember_proto(info, fb)
    if index then
        misses = misses + 1
    end
    return fb
end

-- Whether v is library code a frame merely keeps at hand (an upvalue such as
-- `local sleep = ngx.sleep`): a C function, a field of a loaded module or a
-- loaded module itself. Known once the index is built (prepare).
function _M.is_library(v)
    local t = type(v)
    if t == "function" then
        if ranks and ranks[v] == 1 then
            return true
        end
        local info = debug_getinfo(v, "S")
        return info ~= nil and info.what == "C"
    elseif t == "table" then
        return module_set ~= nil and module_set[v] == true
    end
    return false
end

-- Drops what is cached (tests; a session that wants names found afresh).
function _M.reset()
    index, ranks, module_set, built_at, misses = nil, nil, nil, 0, 0
    by_fn = setmetatable({}, weak_k)
    by_proto, nsources = {}, 0
end

return _M
