-- The raw operations of a condition or log template (cond.lua) on values:
-- comparisons, arithmetic, concatenation and # only on plain strings, numbers
-- and booleans; tables read with rawget; tostring never consults __tostring,
-- not even one set on a whole type with debug.setmetatable. No metamethod of
-- the program ever runs; what an operation makes is charged to the hit's
-- meter (cond_meter.lua).
local ffi = require "ffi"
local meter = require "nffi.inspect.cond_meter"
local capture = require "nffi.inspect.capture"

local type = type
local pcall = pcall
local error = error
local rawget = rawget
local rawequal = rawequal
local tonumber = tonumber
local setmetatable = setmetatable
local debug_getmetatable = debug.getmetatable
local str_sub = string.sub
local str_format = string.format
local ffi_cast = ffi.cast
local ctype_name = capture.ctype_name
local cdata_value = capture.cdata_value
local charge, charge_bytes = meter.charge, meter.charge_bytes
local MAX_STRING = meter.MAX_STRING

local _M = { _VERSION = "0.1.0" }

local function number_text(v)
    return str_format("%.14g", v)  -- what tostring and .. make of a number
end
_M.number_text = number_text

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

return _M
