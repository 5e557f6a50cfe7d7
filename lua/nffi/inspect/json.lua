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
local str_find = string.find
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

-- LuaJIT's string.buffer (OpenResty's LuaJIT has it): parts are appended to
-- one growing buffer instead of becoming Lua strings of their own. A 100,000-
-- task answer made ~10 strings per task with concatenation, enough garbage to
-- drive several GC cycles and a 5.7 ms string-table resize in one step.
local ok_buf, str_buffer = pcall(require, "string.buffer")

-- The same put/putf/get for a LuaJIT without it: parts in a table.
local parts_mt = {}
parts_mt.__index = parts_mt

function parts_mt:put(s)
    local n = self.n + 1
    self.n = n
    self[n] = s
    self.len = self.len + #s
end

function parts_mt:putf(fmt, v)
    self:put(str_format(fmt, v))
end

function parts_mt:get()
    local s = tbl_concat(self, "", 1, self.n)
    self.n, self.len = 0, 0
    return s
end

local function new_sink()
    if ok_buf then
        return str_buffer.new()
    end
    return setmetatable({ n = 0, len = 0 }, parts_mt)
end

local function sink_len(sink)
    if ok_buf then
        return #sink
    end
    return sink.len
end

-- Chunks are cut at this many bytes, so no single copy of a large answer
-- holds the worker and a cosocket send can take them a piece at a time.
local CHUNK_BYTES = 32768

-- Returns the document as an array of string chunks and its total length.
-- b: a budget or nil.
function _M.encode_chunks(value, b)
    local sink = new_sink()
    local chunks, total = {}, 0
    local function cut()
        local chunk = sink:get()
        chunks[#chunks + 1] = chunk
        total = total + #chunk
    end
    local function put(s)
        sink:put(s)
    end
    local function enc(v)
        if sink_len(sink) >= CHUNK_BYTES then
            cut()
        end
        local t = type(v)
        if t == "string" then
            put('"')
            if str_find(v, '[%c"\\]') then
                put((str_gsub(v, '[%c"\\]', escape)))
            else
                put(v)
            end
            put('"')
        elseif t == "number" then
            if v ~= v or v == math_huge or v == -math_huge then
                put("null")
            else
                local int = v == math_floor(v) and v > -9007199254740992
                            and v < 9007199254740992
                sink:putf(int and "%d" or "%.17g", v)
            end
        elseif t == "boolean" then
            put(v and "true" or "false")
        elseif t == "table" then
            if b then
                b:step()
            end
            if getmetatable(v) == array_mt or rawget(v, 1) ~= nil then
                put("[")
                for i = 1, #v do
                    if i > 1 then
                        put(",")
                    end
                    enc(v[i])
                end
                put("]")
            else
                put("{")
                local first = true
                for k, x in pairs(v) do
                    if not first then
                        put(",")
                    end
                    first = false
                    enc(tostring(k))
                    put(":")
                    enc(x)
                end
                put("}")
            end
        else
            put("null")
        end
    end
    enc(value)
    cut()
    return chunks, total
end

function _M.encode(value, b)
    return tbl_concat((_M.encode_chunks(value, b)))
end

_M.decode = cjson.decode

return _M
