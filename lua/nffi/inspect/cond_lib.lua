-- What a condition or log template (cond.lua) may do to a value, and the
-- built-ins it may call. Everything here is raw: no metamethod of the program
-- ever runs (comparisons, arithmetic, concatenation and # only on plain
-- strings, numbers and booleans; tables read with rawget; tostring never
-- consults __tostring, not even one set on a whole type with
-- debug.setmetatable), no function of the program is ever called, nothing is
-- written. Each hit has a budget (the meter): every step of an expression,
-- every byte a built-in scans or makes and every character the pattern
-- matcher (cond_pattern.lua) tests is charged; past it, or past a CPU time
-- limit, evaluation raises and the breakpoint is removed (reason error).
-- In parts: cond_meter.lua is the budget, cond_ops.lua the operations on
-- values (both exported from here as before); this file is the built-ins.
local ffi = require "ffi"
local pattern = require "nffi.inspect.cond_pattern"
local meter = require "nffi.inspect.cond_meter"
local ops = require "nffi.inspect.cond_ops"

local ngx = ngx
local type = type
local next = next
local ipairs = ipairs
local unpack = unpack
local pcall = pcall
local error = error
local select = select
local rawget = rawget
local rawequal = rawequal
local tonumber = tonumber
local setmetatable = setmetatable
local debug_getregistry = debug.getregistry
local package_loaded = package.loaded
local str_len = string.len
local str_byte = string.byte
local str_char = string.char
local str_sub = string.sub
local str_lower = string.lower
local str_upper = string.upper
local str_reverse = string.reverse
local str_format = string.format
local math = math
local math_floor = math.floor
local charge, charge_bytes = meter.charge, meter.charge_bytes
local string_made, too_long = meter.string_made, meter.too_long
local number_text = ops.number_text
local safe_tostring = ops.tostring

local _M = { _VERSION = "0.1.0" }

local MAX_STRING = meter.MAX_STRING
local MAX_BYTES = 1024      -- values string.byte may return

-- The meter (cond_meter.lua) and the operations (cond_ops.lua), as before.
_M.BUDGET, _M.MAX_STRING, _M.TIME_LIMIT_NS = meter.BUDGET, MAX_STRING, meter.TIME_LIMIT_NS
_M.meter = meter.meter
_M.reset = meter.reset
_M.charge = charge
_M.tostring = safe_tostring
_M.eq, _M.lt, _M.le = ops.eq, ops.lt, ops.le
_M.arith, _M.unm, _M.concat, _M.len, _M.index = ops.arith, ops.unm, ops.concat, ops.len, ops.index

-- Built-ins ---------------------------------------------------------------------

local function plain(v)
    local t = type(v)
    return t == "string" or t == "number" or t == "boolean" or t == "nil"
end

local function plain_args(name, n, ...)
    for i = 1, n do
        local v = select(i, ...)
        if not plain(v) then
            error("bad argument #" .. i .. " to '" .. name .. "' (a " .. type(v)
                  .. " value; built-ins take strings, numbers and booleans)", 0)
        end
    end
end

local function str_arg(name, i, v)
    local t = type(v)
    if t == "string" then
        return v
    elseif t == "number" then
        return number_text(v)
    end
    error("bad argument #" .. i .. " to '" .. name .. "' (string expected, got "
          .. (t == "nil" and "no value" or t) .. ")", 0)
end

local function posrelat(pos, len)
    if pos < 0 then
        return len + pos + 1
    end
    return pos
end

local function s_byte(s, i, j)
    s = str_arg("byte", 1, s)
    plain_args("byte", 2, i, j)
    local len = #s
    local from = posrelat(tonumber(i) or 1, len)
    local to = posrelat(tonumber(j) or from, len)
    if from < 1 then
        from = 1
    end
    if to > len then
        to = len
    end
    if to - from + 1 > MAX_BYTES then
        error("string.byte of more than " .. MAX_BYTES .. " bytes", 0)
    end
    charge(1 + (to >= from and to - from + 1 or 0))
    return str_byte(s, from, to)
end

local function s_char(...)
    local n = select("#", ...)
    plain_args("char", n, ...)
    charge(1 + n)
    return str_char(...)
end

local function s_len(s)
    charge(1)
    return str_len(str_arg("len", 1, s))
end

local function s_sub(s, i, j)
    s = str_arg("sub", 1, s)
    plain_args("sub", 2, i, j)
    local len = #s
    local from = posrelat(math_floor(tonumber(i) or 1), len)
    local to = posrelat(math_floor(tonumber(j) or -1), len)
    if from < 1 then
        from = 1
    end
    if to > len then
        to = len
    end
    local n = to - from + 1
    if n > 0 then
        too_long(n)  -- checked and paid before the copy is made
        charge_bytes(n)
    else
        charge(1)
    end
    return str_sub(s, i or 1, j or -1)
end

local function s_whole(name, fn)
    return function(s)
        s = str_arg(name, 1, s)
        too_long(#s)
        charge_bytes(#s)
        return fn(s)
    end
end

-- format: every argument that is no string or number becomes its safe text
-- first (%s would run __tostring, even of nil or a boolean).
local function s_format(fmt, ...)
    fmt = str_arg("format", 1, fmt)
    local n = select("#", ...)
    local args = { ... }
    -- the most it can make: the format, each argument whole, widths up to 99
    local most = #fmt + 99 * n
    for i = 1, n do
        local v = args[i]
        local t = type(v)
        if t ~= "string" and t ~= "number" then
            v = safe_tostring(v)
            args[i] = v
        end
        most = most + (t == "number" and 420 or #v)  -- %.99f of 1e308: 409
    end
    too_long(most)
    charge_bytes(most)
    return str_format(fmt, unpack(args, 1, n))
end

-- find, match, gsub: cond_pattern.lua checks their arguments (strings or
-- numbers; a gsub replacement may also be a table, read raw)
local function s_find(s, p, init, plain_flag)
    charge(1)
    return pattern.find(s, p, init, plain_flag)
end

local function s_match(s, p, init)
    charge(1)
    return pattern.match(s, p, init)
end

local function s_gsub(s, p, repl, n)
    charge(1)
    return pattern.gsub(s, p, repl, n, MAX_STRING)
end

local function pure(name, fn)
    return function(...)
        plain_args(name, select("#", ...), ...)
        charge(1)
        return fn(...)
    end
end

local function b_type(v)
    charge(1)
    return type(v)
end

local function b_tostring(v)
    return string_made(safe_tostring(v))
end

-- tonumber: strings and numbers as Lua; a numeric cdata its number (LuaJIT's
-- conversion, no metamethod); anything else nil.
local function b_tonumber(v, base)
    charge(1)
    local t = type(v)
    if t == "number" or t == "string" then
        plain_args("tonumber", 1, base)
        return tonumber(v, base)
    elseif t == "cdata" and rawequal(base, nil) then
        local ok, n = pcall(tonumber, v)
        if ok and type(n) == "number" then
            return n
        end
    end
    return nil
end

local function b_select(n, ...)
    charge(1 + select("#", ...))
    if type(n) ~= "number" and not rawequal(n, "#") then
        error("bad argument #1 to 'select' (number expected, got " .. type(n) .. ")", 0)
    end
    return select(n, ...)
end

-- ngx: reads of the current request, nil outside one.
local function ngx_var(name)
    local t = type(name)
    if t ~= "string" and t ~= "number" then
        error("ngx.var takes a variable name, not a " .. t, 0)
    end
    local ok, v = pcall(function()
        return ngx.var[name]
    end)
    if not ok or type(v) ~= "string" then
        charge(1)
        return nil
    end
    charge_bytes(#v)
    return v
end
_M.ngx_var = ngx_var

local get_ctx_ref, ctx_in_ssl, ctx_ssl_ref
local NO_CTX = setmetatable({}, { __newindex = function() error("read-only", 2) end })

-- The request's ngx.ctx table without making one (ngx.ctx itself creates it
-- on first read): through lua-resty-core's registry of ctx tables when it is
-- loaded (the usual case), else ngx.ctx. An empty table when the request has
-- none yet or outside a request, so ngx.ctx.KEY is nil there, not an error.
local function request_ctx()
    charge(1)
    local base = package_loaded["resty.core.base"]
    local ctxs = debug_getregistry().ngx_lua_ctx_tables
    if package_loaded["resty.core.ctx"] and type(base) == "table" and type(ctxs) == "table" then
        if get_ctx_ref == nil then
            local ok, f = pcall(function()
                return ffi.C.ngx_http_lua_ffi_get_ctx_ref
            end)
            get_ctx_ref = ok and f or false
            ctx_in_ssl, ctx_ssl_ref = ffi.new("int[1]"), ffi.new("int[1]")
        end
        if get_ctx_ref then
            local ok, ref = pcall(function()
                local r = base.get_request()
                return r and get_ctx_ref(r, ctx_in_ssl, ctx_ssl_ref)
            end)
            local ctx = ok and type(ref) == "number" and ref >= 0 and rawget(ctxs, ref)
            return type(ctx) == "table" and ctx or NO_CTX
        end
    end
    local ok, ctx = pcall(function()
        return ngx.ctx
    end)
    return ok and type(ctx) == "table" and ctx or NO_CTX
end
_M.request_ctx = request_ctx

local function guarded(fn)
    return function()
        charge(1)
        local ok, v = pcall(fn)
        if ok then
            return v
        end
        return nil
    end
end

local function get_headers()
    charge(1)
    local ok, h = pcall(ngx.req.get_headers, 100)
    if not ok or type(h) ~= "table" then
        return nil
    end
    setmetatable(h, nil)  -- our own table: no name-normalising __index
    local n = 0
    for _ in next, h do
        n = n + 1
    end
    charge(n)
    return h
end

-- The callable built-ins by the path a condition names them with.
local builtins = {
    type = b_type, tostring = b_tostring, tonumber = b_tonumber, select = b_select,
    ["string.byte"] = s_byte, ["string.char"] = s_char, ["string.find"] = s_find,
    ["string.format"] = s_format, ["string.gsub"] = s_gsub, ["string.len"] = s_len,
    ["string.lower"] = s_whole("lower", str_lower), ["string.match"] = s_match,
    ["string.reverse"] = s_whole("reverse", str_reverse), ["string.sub"] = s_sub,
    ["string.upper"] = s_whole("upper", str_upper),
    ["ngx.req.get_method"] = guarded(function() return ngx.req.get_method() end),
    ["ngx.req.get_headers"] = get_headers,
    ["ngx.worker.id"] = guarded(function() return ngx.worker.id() end),
    ["ngx.worker.pid"] = guarded(function() return ngx.worker.pid() end),
    ["ngx.get_phase"] = guarded(function() return ngx.get_phase() end),
    ["ngx.now"] = guarded(function() return ngx.now() end),
}
for _, name in ipairs({ "abs", "ceil", "floor", "fmod", "max", "min", "modf", "sqrt", "exp",
                        "log", "log10", "pow", "sin", "cos", "tan" }) do
    builtins["math." .. name] = pure("math." .. name, math[name])
end
_M.builtins = builtins

-- Values a condition may read by path.
_M.constants = { ["math.pi"] = math.pi, ["math.huge"] = math.huge }

-- For messages: what may be called.
_M.ALLOWED = "string.byte/char/find/format/gsub/len/lower/match/reverse/sub/upper, math.*"
             .. " (no random), type, tostring, tonumber, select, ngx.req.get_method,"
             .. " ngx.req.get_headers, ngx.worker.id, ngx.worker.pid, ngx.get_phase, ngx.now"

return _M
