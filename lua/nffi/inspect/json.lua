-- A JSON encoder that yields (through a budget) while it writes large
-- documents, so a 20,000-coroutine answer never stalls the worker. Tables are
-- arrays when their first slot is set or when marked with _M.array(); empty
-- unmarked tables are objects. NaN and infinities become null.
local cjson = require "cjson.safe"

local type = type
local pairs = pairs
local tostring = tostring
local getmetatable = getmetatable
local setmetatable = setmetatable
local rawget = rawget
local math_floor = math.floor
local math_huge = math.huge
local str_format = string.format
local str_gsub = string.gsub
local str_byte = string.byte
local tbl_concat = table.concat

local _M = { _VERSION = "0.1.0" }

local array_mt = {}

function _M.array(t)
    return setmetatable(t or {}, array_mt)
end

local escapes = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
    ["\b"] = "\\b", ["\f"] = "\\f",
}

local function escape(c)
    return escapes[c] or str_format("\\u%04x", str_byte(c))
end

local function quote(s)
    return '"' .. str_gsub(s, '[%c"\\]', escape) .. '"'
end

local function number(v)
    if v ~= v or v == math_huge or v == -math_huge then
        return "null"
    end
    if v == math_floor(v) and v > -9007199254740992 and v < 9007199254740992 then
        return str_format("%d", v)
    end
    return str_format("%.17g", v)
end

-- Parts are joined into chunks of this many, so no single concat of a large
-- answer holds the worker (one table.concat of 500,000 parts took ~10 ms).
local CHUNK_PARTS = 2048

-- Returns the document as an array of string chunks (a cosocket sends such an
-- array as one write) and its total length. b: a budget or nil.
function _M.encode_chunks(value, b)
    local buf, n = {}, 0
    local chunks, total = {}, 0
    local function flush()
        local chunk = tbl_concat(buf, "", 1, n)
        chunks[#chunks + 1] = chunk
        total = total + #chunk
        n = 0
    end
    local function enc(v)
        if n >= CHUNK_PARTS then
            flush()
        end
        local t = type(v)
        if t == "string" then
            n = n + 1
            buf[n] = quote(v)
        elseif t == "number" then
            n = n + 1
            buf[n] = number(v)
        elseif t == "boolean" then
            n = n + 1
            buf[n] = v and "true" or "false"
        elseif t == "table" then
            if b then
                b:step()
            end
            if getmetatable(v) == array_mt or rawget(v, 1) ~= nil then
                n = n + 1
                buf[n] = "["
                for i = 1, #v do
                    if i > 1 then
                        n = n + 1
                        buf[n] = ","
                    end
                    enc(v[i])
                end
                n = n + 1
                buf[n] = "]"
            else
                n = n + 1
                buf[n] = "{"
                local first = true
                for k, x in pairs(v) do
                    if not first then
                        n = n + 1
                        buf[n] = ","
                    end
                    first = false
                    n = n + 1
                    buf[n] = quote(tostring(k))
                    n = n + 1
                    buf[n] = ":"
                    enc(x)
                end
                n = n + 1
                buf[n] = "}"
            end
        else
            n = n + 1
            buf[n] = "null"
        end
    end
    enc(value)
    flush()
    return chunks, total
end

function _M.encode(value, b)
    return tbl_concat((_M.encode_chunks(value, b)))
end

_M.decode = cjson.decode

return _M
