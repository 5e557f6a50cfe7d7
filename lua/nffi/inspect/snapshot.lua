-- The snapshot a breakpoint hit ships: the stack from the hit frame down, that
-- frame's locals, upvalues and varargs (captured by capture.lua) and the
-- request. Shared by line breakpoints (breakpoints.lua) and task breakpoints
-- (taskbp.lua). Runs inside their hooks: it never yields, never raises on a
-- missing frame and allocates only what it returns.
-- Every level here is as the function that takes it sees it: a caller passes
-- its own level + 1 (a call adds a frame; a tail call would not, so none of
-- these functions is ever tail-called by them).
local json = require "nffi.inspect.json"
local capture = require "nffi.inspect.capture"
local coroutines = require "nffi.inspect.coroutines"
local cond = require "nffi.inspect.cond"

local ngx = ngx
local debug_getinfo = debug.getinfo
local debug_getlocal = debug.getlocal
local debug_getupvalue = debug.getupvalue
local next = next
local pcall = pcall
local rawequal = rawequal
local str_byte = string.byte
local capture_value = capture.capture_value
local frame_of = coroutines.frame_of
local array = json.array
local NIL = cond.NIL

local _M = { _VERSION = "0.1.0" }

local MAX_HIT_FRAMES = 20
local MAX_LOCALS = 200
local MAX_UPVALUES = 60
local MAX_VARARGS = 50
local CAPTURE_OPTS = { depth = 2, keys = 50, string_bytes = 256 }
-- Table entries one hit captures, all its variables together (past it, a
-- table is cut and marked truncated). depth x keys alone let one local of 50
-- tables of 50 be 2,550 entries (~3 ms, ~10 ms cold, in the hook), and 190
-- locals naming it ~1 s; an entry costs about 1 us, so this keeps a hit's
-- capture near 1 ms.
local MAX_HIT_ENTRIES = 1000

-- Fills locals and upvalues (name -> value, NIL for nil: cond.lua's frame
-- tables) from the frame at level; upvalues may be locals itself (one map,
-- an upvalue wins over a local of its name) or nil (not read). With
-- want_varargs, returns the frame's varargs (NIL for nil) when it has any.
local function frame_vars(level, locals, upvalues, want_varargs)
    -- "u" (isvararg) only when varargs are read: the condition path skips it.
    -- No frame at level (a light thread's entry function has no caller):
    -- nothing to read, where debug.getlocal would raise
    local info = debug_getinfo(level, want_varargs and "fu" or "f")
    if not info then
        return nil
    end
    for i = 1, MAX_LOCALS do
        local name, v = debug_getlocal(level, i)
        if not name then
            break
        end
        if str_byte(name, 1) ~= 40 then  -- "(": (for …), (*temporary)
            locals[name] = rawequal(v, nil) and NIL or v
        end
    end
    local fn = info.func
    if fn and upvalues then
        for i = 1, MAX_UPVALUES do
            local name, v = debug_getupvalue(fn, i)
            if not name then
                break
            end
            upvalues[name] = rawequal(v, nil) and NIL or v
        end
    end
    local varargs
    if want_varargs and info and info.isvararg then
        varargs = {}
        for i = 1, MAX_VARARGS do
            local name, v = debug_getlocal(level, -i)
            if not name then
                break
            end
            varargs[i] = rawequal(v, nil) and NIL or v
        end
    end
    return varargs
end
_M.frame_vars = frame_vars

local function capture_map(vars, shared)
    local out = {}
    for name, v in next, vars do
        if rawequal(v, NIL) then
            v = nil
        end
        out[name] = capture_value(v, CAPTURE_OPTS, shared)
    end
    return out
end

-- Sets params.locals, params.upvalues and params.varargs (a JSON array) from
-- the frame at level; level nil (no frame found): all three empty. One ref
-- map for all three, so a table met twice is a cycle ref the second time.
function _M.capture_frame(params, level, want_varargs)
    local locals, upvalues, varargs = {}, {}, nil
    if level then
        varargs = frame_vars(level + 1, locals, upvalues, want_varargs)
    end
    local shared = { nref = 0, left = MAX_HIT_ENTRIES }
    params.locals = capture_map(locals, shared)
    params.upvalues = capture_map(upvalues, shared)
    local va = array()
    if varargs then
        for i = 1, #varargs do
            local v = varargs[i]
            if rawequal(v, NIL) then
                v = nil
            end
            va[i] = capture_value(v, CAPTURE_OPTS, shared)
        end
    end
    params.varargs = va
end

-- Up to MAX_HIT_FRAMES frames from level down (a JSON array; empty for nil).
function _M.frames(level)
    local frames = array()
    if level then
        for l = level, level + MAX_HIT_FRAMES - 1 do
            local info = debug_getinfo(l, "nSlf")
            if not info then
                break
            end
            -- the caller of frame l is at l + 1, as this function counts
            frames[#frames + 1] = frame_of(info, nil, l + 1)
        end
    end
    return frames
end

-- A named function, not a closure per hit: pcall needs a function to call.
local function request_uri()
    return ngx.var.request_uri
end

-- { method, uri } of the current request; nil outside one (timer, init).
function _M.request_of()
    local ok, method = pcall(ngx.req.get_method)
    if not ok then
        return nil
    end
    local ok2, uri = pcall(request_uri)
    return { method = method, uri = ok2 and uri or "" }
end

return _M
