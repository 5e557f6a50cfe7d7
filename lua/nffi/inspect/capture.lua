-- Bounded raw capture of values and stacks (Lua.getStack). Reads with rawget /
-- next only: no metamethod runs, no tostring on a table, userdata or cdata that
-- could carry __tostring. Tables: `depth` levels, `keys` entries each; strings:
-- `string_bytes` bytes. A table met again within one variable is a
-- {type = "cycle", ref = <its ref>}.
-- With a budget (Lua.getStack) every table entry is a step of it, so one large
-- variable is captured in slices with the worker serving between them (at the
-- largest limits one variable can be 5,000+ entries: ~5 ms in one go). What
-- the program changes while the capture waits is seen as it is when read; a
-- table whose walk breaks on a change (next on a key that was removed) is cut
-- there and marked truncated. Without one (a breakpoint hit, in a hook that
-- cannot yield) the limits and a cap on the entries of the whole capture
-- (snapshot.lua) bound the work.
local ffi = require "ffi"
local json = require "nffi.inspect.json"
local coroutines = require "nffi.inspect.coroutines"
local names = require "nffi.inspect.names"
local liveness = require "nffi.inspect.liveness"

local ngx = ngx
local ngx_worker_pid = ngx.worker.pid
local debug_getinfo = debug.getinfo
local debug_getlocal = debug.getlocal
local debug_getupvalue = debug.getupvalue
local debug_getmetatable = debug.getmetatable
local co_running = coroutine.running
local ffi_typeof = ffi.typeof
local ffi_istype = ffi.istype
local ffi_cast = ffi.cast
local type = type
local next = next
local pcall = pcall
local rawequal = rawequal
local rawget = rawget
local ipairs = ipairs
local setmetatable = setmetatable
local tostring = tostring
local tonumber = tonumber
local str_byte = string.byte
local str_sub = string.sub
local str_match = string.match
local str_format = string.format
local math_huge = math.huge
local array = json.array
local live_slots = liveness.live_slots
local compiled = liveness.compiled
local is_library = names.is_library

local _M = { _VERSION = "0.1.0" }

local DEFAULTS = { depth = 2, keys = 50, string_bytes = 256 }
local LIMITS = { depth = 8, keys = 1000, string_bytes = 65536 }
local MAX_STACK = 100
local MAX_LOCALS = 200
local MAX_UPVALUES = 60
local MAX_VARARGS = 50

local function number_value(v)
    if v ~= v then
        return "nan"
    elseif v == math_huge then
        return "inf"
    elseif v == -math_huge then
        return "-inf"
    end
    return v
end

local function ctype_name(v)
    local ok, ct = pcall(ffi_typeof, v)
    if not ok then
        return "?"
    end
    local s = tostring(ct)  -- a ctype object: its own tostring, never a metatype's
    return str_match(s, "^ctype<(.*)>$") or s
end
_M.ctype_name = ctype_name

-- The value of a cdata as a string, by its ctype's name: a number for scalars
-- (42 for an int64_t, no LL), the address of a pointer or function pointer
-- ("0x7f12..."), "NULL" for a null one; nil for aggregates. Only conversions:
-- no metamethod of a metatype runs (comparing with == or nil would).
local function cdata_value(v, ctype)
    if ffi_istype("int64_t", v) or ffi_istype("uint64_t", v) then
        -- plain 64-bit boxes print as 42LL / 42ULL
        local s = tostring(ffi_cast(ffi_istype("int64_t", v) and "int64_t" or "uint64_t", v))
        return (str_match(s, "^(-?%d+)U?LL$") or s)
    end
    local last = str_sub(ctype, -1)
    -- pointers, and functions (int (*)(int), or a C function itself)
    if last == "*" or last == ")" then
        local ok, addr = pcall(ffi_cast, "uintptr_t", v)
        if ok then
            local s = str_match(tostring(addr), "^(%d+)ULL$")
            local n = s and tonumber(s)
            if n == 0 then
                return "NULL"
            elseif n then
                return str_format("0x%x", n)
            end
        end
        return nil
    end
    if last == "&" or last == "]" then
        return nil
    end
    local ok, n = pcall(tonumber, v)
    if ok and type(n) == "number" then
        return tostring(number_value(n))
    end
    return nil
end
_M.cdata_value = cdata_value

local capture

-- A C function type, or a pointer to one: an FFI binding kept at hand.
local function is_function_ctype(ctype)
    return type(ctype) == "string" and str_sub(ctype, -1) == ")"
end

-- Tables that are views on nginx state read through metamethods (ngx.var,
-- ngx.header): raw they look empty. Found by identity (rawget: no
-- metamethod of ngx runs).
local known_proxies
local function proxy_label(t)
    if not known_proxies then
        known_proxies = setmetatable({}, { __mode = "k" })
        for _, name in ipairs({ "var", "header", "arg" }) do
            local p = rawget(ngx, name)
            if type(p) == "table" then
                known_proxies[p] = "ngx." .. name
            end
        end
    end
    local label = known_proxies[t]
    if label then
        return label
    end
    -- no entries of its own, reads and writes through functions: a proxy too
    local mt = debug_getmetatable(t)
    if type(mt) == "table" and rawequal(next(t), nil) then
        local idx, nidx = rawget(mt, "__index"), rawget(mt, "__newindex")
        if type(idx) == "function" or type(nidx) == "function" then
            return "table with __index/__newindex functions"
        end
    end
    return nil
end

local function capture_table(t, level, st)
    local ref = st.seen[t]
    if ref then
        return { type = "cycle", ref = ref }
    end
    st.nref = st.nref + 1
    ref = "t" .. st.nref
    local out = { type = "table", ref = ref }
    local shared = st.shared
    local left = shared.left
    if level > st.depth or (left and left <= 0) then
        out.truncated = true
        return out
    end
    st.seen[t] = ref
    local b = st.b
    local entries = array()
    local n = 0
    local ok, k, v = pcall(next, t)
    -- rawequal: a cdata key's metatype may have __eq
    while ok and not rawequal(k, nil) do
        if n >= st.keys then
            out.truncated = true
            break
        end
        left = shared.left
        if left then
            if left <= 0 then
                out.truncated = true
                break
            end
            shared.left = left - 1
        end
        n = n + 1
        entries[n] = { key = capture(k, level + 1, st), value = capture(v, level + 1, st) }
        if b then
            -- may yield: k stays referenced here, so next can go on from it
            -- unless the program removed it meanwhile (then next fails)
            b:step()
        end
        ok, k, v = pcall(next, t, k)
    end
    if not ok then
        out.truncated = true
    end
    out.entries = entries
    return out
end

-- The first `bytes` bytes of a long string, copied once per answer: the same
-- long string met again (5,000 references to one 1 MiB string) is not copied
-- (and allocated) again.
local function string_head(s, bytes, st)
    local cuts = st.shared.cuts
    if not cuts then
        cuts = {}
        st.shared.cuts = cuts
    end
    local head = cuts[s]
    if not head then
        head = str_sub(s, 1, bytes)
        cuts[s] = head
        if st.b then
            st.b:check()  -- a copy of up to 64 KiB: a large unit, read the clock
        end
    end
    return head
end

capture = function(v, level, st)
    local t = type(v)
    if t == "nil" then
        return { type = "nil" }
    elseif t == "boolean" then
        return { type = "boolean", value = v }
    elseif t == "number" then
        return { type = "number", value = number_value(v) }
    elseif t == "string" then
        local len = #v
        if len > st.string_bytes then
            return { type = "string", value = string_head(v, st.string_bytes, st), length = len,
                     truncated = true }
        end
        return { type = "string", value = v }
    elseif t == "table" then
        local proxy = proxy_label(v)
        if proxy then
            return { type = "proxy", value = proxy }
        end
        return capture_table(v, level, st)
    elseif t == "function" then
        local info = debug_getinfo(v, "S")
        if info.what == "C" then
            return { type = "function", value = "function [C]" }
        end
        return { type = "function",
                 value = "function " .. coroutines.source_of(info) .. ":" .. info.linedefined }
    elseif t == "thread" then
        return { type = "thread", value = coroutines.id_of(v) }
    elseif t == "cdata" then
        local ctype = ctype_name(v)
        return { type = "cdata", ctype = ctype, value = cdata_value(v, ctype) }
    end
    return { type = "userdata" }
end

-- shared: what the variables of one answer share (nref; cuts: the heads of
-- long strings, made when the first one is met; left: when set, the table
-- entries the whole answer may still capture, past which tables are cut).
local function new_state(opts, shared, b)
    return { depth = opts.depth, keys = opts.keys, string_bytes = opts.string_bytes,
             seen = {}, nref = shared.nref, shared = shared, b = b }
end

-- One variable's value; refs stay unique across the whole answer. b: a budget
-- (may yield between table entries), or nil (never yields).
local function capture_var(v, opts, shared, b)
    local st = new_state(opts, shared, b)
    local out = capture(v, 1, st)
    shared.nref = st.nref
    return out
end
_M.capture_value = capture_var

local function is_internal(name)
    return str_byte(name, 1) == 40  -- "(" : (for …), (*temporary), (*vararg)
end

-- Whether co's frame at level still runs fn at line: a suspended coroutine
-- can be resumed while its stack is read (the read yields between slices),
-- and a level it has left makes debug.getlocal raise.
local function still_there(co, level, fn, line, moving)
    if not moving then
        return true
    end
    local now = debug_getinfo(co, level, "fl")
    return now ~= nil and rawequal(now.func, fn) and now.currentline == line
end

-- slot -> whether the local there holds the program's value (liveness.lua),
-- for a Lua frame of a suspended coroutine; nil: all of them do (the
-- agent's own running coroutine, C frames) or it cannot be told.
local function live_locals(co, level, info, moving, stale, b)
    if not moving or not stale or (info.what ~= "Lua" and info.what ~= "main") then
        return nil
    end
    local slots = {}
    for i = 1, MAX_LOCALS do
        local name = debug_getlocal(co, level, i)
        if not name then
            break
        end
        if not is_internal(name) then
            slots[i - 1] = name
        end
    end
    return live_slots(info.func, info.currentline, slots, b)
end

-- nil when co ran on, leaving the frame, while it was read
-- stale: whether a trace exit may have restored this frame (see liveness.compiled)
local function frame_vars(co, level, info, opts, shared, b, stale)
    local moving = co ~= co_running()
    local fn, line = info.func, info.currentline
    local live = live_locals(co, level, info, moving, stale, b)
    local locals = array()
    for i = 1, MAX_LOCALS do
        if not still_there(co, level, fn, line, moving) then
            return nil
        end
        local name, v = debug_getlocal(co, level, i)
        if not name then
            break
        end
        if not is_internal(name) then
            local value
            if live and live[i - 1] == false then
                -- not read again from here: a trace exit may not have kept it
                value = { type = "unavailable" }
            else
                value = capture_var(v, opts, shared, b)
            end
            locals[#locals + 1] = { name = name, value = value }
            b:check()
        end
    end
    local varargs = array()
    if info.isvararg then
        for i = 1, MAX_VARARGS do
            if not still_there(co, level, fn, line, moving) then
                return nil
            end
            local name, v = debug_getlocal(co, level, -i)
            if not name then
                break
            end
            varargs[#varargs + 1] = capture_var(v, opts, shared, b)
        end
    end
    local upvalues = array()
    if info.what ~= "C" and type(fn) == "function" then
        for i = 1, MAX_UPVALUES do
            local name, v = debug_getupvalue(fn, i)
            if not name then
                break
            end
            local var = { name = name, value = capture_var(v, opts, shared, b) }
            local cv = var.value
            if is_library(v) or (cv.type == "cdata" and is_function_ctype(cv.ctype)) then
                var.library = true  -- front ends hide these unless asked
            end
            upvalues[#upvalues + 1] = var
            b:check()
        end
    end
    return locals, upvalues, varargs
end

local function option(params, name)
    local v = params[name]
    if v == nil then
        return DEFAULTS[name]
    end
    if type(v) ~= "number" or v < 0 then
        return nil, name .. " must be a non-negative integer"
    end
    if v > LIMITS[name] then
        return LIMITS[name]
    end
    return v
end

-- Lua.getStack
function _M.get_stack(params, b)
    local id = params.coroutine
    if type(id) ~= "number" then
        return nil, "coroutine must be a coroutine id (as `coroutines` lists them)"
    end
    local co, gone = coroutines.by_id(id)
    if not co then
        if gone then
            return nil, "coroutine " .. id .. " of worker " .. ngx_worker_pid() .. " has finished"
        end
        return nil, "unknown coroutine " .. tostring(id) .. " in worker " .. ngx_worker_pid()
            .. " (ids as `coroutines` lists them)"
    end
    local opts = {}
    for name in next, DEFAULTS do
        local v, err = option(params, name)
        if not v then
            return nil, err
        end
        opts[name] = v
    end
    local shared = { nref = 0 }
    local frames = array()
    names.prepare(b)
    local base = co == co_running() and 1 or 0
    -- levels at or above the deepest one whose function a trace starts in:
    -- their dead locals may hold stale values
    local stale_to = -1
    if params.locals and co ~= co_running() then
        for level = base + MAX_STACK - 1, base, -1 do
            local fi = debug_getinfo(co, level, "f")
            if fi and compiled(fi.func, b) then
                stale_to = level
                break
            end
        end
    end
    for level = base, base + MAX_STACK - 1 do
        local info = debug_getinfo(co, level, "nSluf")
        if not info then
            break
        end
        local f = coroutines.frame_of(info, co, level + 1)
        f.level = level - base
        if params.locals then
            f.locals, f.upvalues, f.varargs = frame_vars(co, level, info, opts, shared, b,
                                                         level <= stale_to)
            if not f.locals then
                return nil, "coroutine " .. id .. " ran on while its stack was read"
                            .. " (it was resumed meanwhile): ask again"
            end
        end
        frames[#frames + 1] = f
        b:check()
    end
    return { frames = frames, request = coroutines.request_of(co) }
end

return _M
