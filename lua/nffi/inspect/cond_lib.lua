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
local ffi = require "ffi"
local pattern = require "nffi.inspect.cond_pattern"
local capture = require "nffi.inspect.capture"

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
local debug_getmetatable = debug.getmetatable
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
local ffi_cast = ffi.cast
local ctype_name = capture.ctype_name
local cdata_value = capture.cdata_value

local _M = { _VERSION = "0.1.0" }

-- Per hit: steps (one per expression node; a built-in pays for its bytes,
-- BYTES_PER_STEP a step; the pattern matcher about one per character it
-- tests), and the longest string it may make. Measured with the JIT off (as
-- in a hook): the costliest kinds of step (backtracking, frontiers, gsub
-- pieces) run at 35-90 ns, so a whole budget is at most about 1 ms.
local BUDGET = 10000
local BYTES_PER_STEP = 32
local MAX_STRING = 65536
local MAX_BYTES = 1024      -- values string.byte may return
-- CPU time, read every CLOCK_EVERY steps: a net under the step count.
local CLOCK_EVERY = 1024
local TIME_LIMIT_NS = 5e6
_M.BUDGET, _M.MAX_STRING, _M.TIME_LIMIT_NS = BUDGET, MAX_STRING, TIME_LIMIT_NS

local meter = { left = BUDGET, next_check = BUDGET - CLOCK_EVERY, t0 = false }
_M.meter = meter

local cpu_ns  -- libnffi's thread CPU clock; false when the library is not there

local function over()
    error("over the per-hit budget (" .. BUDGET .. " steps)", 0)
end

local function check(left)
    if left < 0 then
        over()
    end
    meter.next_check = left - CLOCK_EVERY
    if cpu_ns == nil then
        local ok, lib = pcall(function()
            return require("nffi.native").lib()
        end)
        cpu_ns = ok and lib.nffi_thread_cpu_ns or false
    end
    if cpu_ns then
        local now = tonumber(cpu_ns())
        local t0 = meter.t0
        if not t0 then
            meter.t0 = now
        elseif now - t0 > TIME_LIMIT_NS then
            error("over the per-hit time budget (" .. TIME_LIMIT_NS / 1e6 .. " ms)", 0)
        end
    end
end

-- A new hit: a full budget.
function _M.reset()
    meter.left = BUDGET
    meter.next_check = BUDGET - CLOCK_EVERY
    meter.t0 = false
end

local function charge(n)
    local left = meter.left - n
    meter.left = left
    if left < meter.next_check then
        check(left)
    end
end
_M.charge = charge

pattern.set_meter(meter, function()
    charge(0)
end)

local function charge_bytes(n)
    charge(1 + math_floor(n / BYTES_PER_STEP))
end

local function string_made(s)
    local n = #s
    if n > MAX_STRING then
        error("string longer than " .. MAX_STRING .. " bytes", 0)
    end
    charge_bytes(n)
    return s
end

-- Values ------------------------------------------------------------------------

local function number_text(v)
    return str_format("%.14g", v)  -- what tostring and .. make of a number
end

-- pointers and functions (a reference's cast would read what it refers to)
local function is_pointer(ct)
    local last = str_sub(ct, -1)
    return last == "*" or last == ")"
end

-- A NULL pointer (or function pointer) cdata.
local function is_null(v)
    if not is_pointer(ctype_name(v)) then
        return false
    end
    local ok, addr = pcall(ffi_cast, "uintptr_t", v)
    return ok and tonumber(addr) == 0
end

-- What tostring shows, without __tostring: cdata as the snapshot shows it.
local function safe_tostring(v)
    local t = type(v)
    if t == "string" then
        return v
    elseif t == "number" then
        return number_text(v)
    elseif t == "boolean" then
        return v and "true" or "false"
    elseif t == "nil" then
        return "nil"
    elseif t == "cdata" then
        local ct = ctype_name(v)
        local val = cdata_value(v, ct)
        return val and ("cdata<" .. ct .. ">: " .. val) or ("cdata<" .. ct .. ">")
    end
    return t .. ": " .. str_format("%p", v)
end
_M.tostring = safe_tostring

-- binary: two operands (b may be nil: never compared, a cdata's __eq would run)
local function type_error(what, a, b, binary)
    if not binary then
        error("attempt to " .. what .. " a " .. type(a) .. " value", 0)
    end
    error("attempt to " .. what .. " " .. type(a) .. " with " .. type(b), 0)
end

-- == : rawequal, and a NULL pointer equals nil as in LuaJIT.
function _M.eq(a, b)
    if rawequal(a, b) then
        return true
    end
    if rawequal(b, nil) and type(a) == "cdata" then
        return is_null(a)
    end
    if rawequal(a, nil) and type(b) == "cdata" then
        return is_null(b)
    end
    return false
end

function _M.lt(a, b)
    local ta, tb = type(a), type(b)
    if ta == tb and (ta == "number" or ta == "string") then
        return a < b
    end
    type_error("compare", a, b, true)
end

function _M.le(a, b)
    local ta, tb = type(a), type(b)
    if ta == tb and (ta == "number" or ta == "string") then
        return a <= b
    end
    type_error("compare", a, b, true)
end

-- An operand of arithmetic: a number, or a string that reads as one (as Lua).
local function num(v, a, b, binary)
    local t = type(v)
    if t == "number" then
        return v
    end
    local n = t == "string" and tonumber(v)
    if not n then
        type_error("perform arithmetic on", a, b, binary)
    end
    return n
end

_M.arith = {
    ["+"] = function(a, b) return num(a, a, b, true) + num(b, a, b, true) end,
    ["-"] = function(a, b) return num(a, a, b, true) - num(b, a, b, true) end,
    ["*"] = function(a, b) return num(a, a, b, true) * num(b, a, b, true) end,
    ["/"] = function(a, b) return num(a, a, b, true) / num(b, a, b, true) end,
    ["%"] = function(a, b) return num(a, a, b, true) % num(b, a, b, true) end,
    ["^"] = function(a, b) return num(a, a, b, true) ^ num(b, a, b, true) end,
}

function _M.unm(a)
    return -num(a, a)
end

function _M.concat(a, b)
    local ta, tb = type(a), type(b)
    if (ta == "string" or ta == "number") and (tb == "string" or tb == "number") then
        local n = (ta == "string" and #a or 24) + (tb == "string" and #b or 24)
        if n > MAX_STRING then
            error("string longer than " .. MAX_STRING .. " bytes", 0)
        end
        charge_bytes(n)
        return a .. b
    end
    type_error("concatenate", a, b, true)
end

-- # of a table as LuaJIT's # without __len (a border), counted when this
-- LuaJIT would consult __len on tables (built with Lua 5.2 compatibility).
local len_is_raw = #setmetatable({}, { __len = function() return 1 end }) == 0

local function raw_len(t)
    if len_is_raw or debug_getmetatable(t) == nil then
        return #t
    end
    local n = 0
    while not rawequal(rawget(t, n + 1), nil) do
        n = n + 1
        charge(1)
    end
    return n
end

function _M.len(a)
    local t = type(a)
    if t == "string" then
        return #a
    elseif t == "table" then
        return raw_len(a)
    end
    type_error("get length of", a)
end

-- o[k]: tables only, raw. what names the expression for the message.
function _M.index(o, k, what)
    if type(o) == "table" then
        return rawget(o, k)
    end
    error("attempt to index " .. (what and (what .. " (a " .. type(o) .. " value)")
                                  or ("a " .. type(o) .. " value"))
          .. (type(o) == "cdata" and ": conditions read no cdata fields" or ""), 0)
end

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

local function too_long(n)
    if n > MAX_STRING then
        error("string longer than " .. MAX_STRING .. " bytes", 0)
    end
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
