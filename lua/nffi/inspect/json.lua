-- A JSON encoder that yields (through a budget) while it writes large
-- documents, so a 20,000-coroutine answer never stalls the worker, and stops
-- once a document passes a size cap instead of building it whole. Tables are
-- arrays when their first slot is set or when marked with _M.array(); empty
-- unmarked tables are objects. NaN and infinities become null. Decoding is
-- strict: a private cjson instance (the application's cjson settings stay as
-- they are) that refuses NaN, Infinity and hex numbers and deep nesting.
local cjson = require("cjson.safe").new()

local type = type
local pairs = pairs
local error = error
local pcall = pcall
local tostring = tostring
local getmetatable = getmetatable
local setmetatable = setmetatable
local rawget = rawget
local math_floor = math.floor
local math_huge = math.huge
local str_char = string.char
local str_format = string.format
local str_gsub = string.gsub
local str_find = string.find
local str_sub = string.sub
local tbl_concat = table.concat

local _M = { _VERSION = "0.1.0" }

-- Requests nest three levels (frame, params, spec); 16 is plenty, and cjson
-- stops at once past it instead of building a deep structure.
cjson.decode_max_depth(16)
cjson.decode_invalid_numbers(false)
local cjson_encode = cjson.encode

local array_mt = {}
local raw_mt = {}

function _M.array(t)
    return setmetatable(t or {}, array_mt)
end

-- JSON text already encoded (by _M.encode), written as it is: an answer that
-- encoded its parts to compare them does not encode them again.
function _M.raw(text)
    return setmetatable({ text }, raw_mt)
end

-- One replacement per byte gsub may match: a table, not a function (a
-- function call per control character made 10 MB of them take seconds).
local escapes = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
    ["\b"] = "\\b", ["\f"] = "\\f",
}
for c = 0, 31 do
    local ch = str_char(c)
    escapes[ch] = escapes[ch] or str_format("\\u%04x", c)
end
escapes["\127"] = "\\u007f"

local ESCAPE = '[%c"\\]'

-- LuaJIT's string.buffer (OpenResty's LuaJIT has it): parts are appended to
-- one growing buffer instead of becoming Lua strings of their own. A 100,000-
-- task answer made ~10 strings per task with concatenation, enough garbage to
-- drive several GC cycles and a 5.7 ms string-table resize in one step.
local ok_buf, str_buffer = pcall(require, "string.buffer")

-- The same put/get for a LuaJIT without it: parts in a table.
local parts_mt = {}
parts_mt.__index = parts_mt

function parts_mt:put(s)
    local n = self.n + 1
    self.n = n
    self[n] = s
    self.len = self.len + #s
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
-- Strings up to SHORT bytes are escaped here; longer ones by cjson's encoder
-- (C: 60 KiB in ~0.05 ms, where a Lua pattern scan alone takes ~0.6 ms),
-- PIECE bytes at a time with the budget's clock read between pieces (escaping
-- is per byte: any cut is fine; cjson also writes "/" as "\/", still JSON).
local SHORT = 256
local PIECE = 32768
-- Tables nested deeper than this are written as null (answers nest a few
-- levels; a cycle would otherwise recurse until the C stack gives out).
local MAX_DEPTH = 64

local TOO_LARGE = {}

-- Returns the document as an array of string chunks and its total length;
-- or nil and the length reached when max (bytes) is given and the document
-- grows past it: building stops there, the rest is never written.
-- b: a budget or nil.
function _M.encode_chunks(value, b, max)
    local sink = new_sink()
    local chunks, total = {}, 0
    local size = 0  -- bytes put so far
    local limit = max or math_huge
    local function cut()
        local chunk = sink:get()
        chunks[#chunks + 1] = chunk
        total = total + #chunk
    end
    local function put(s)
        size = size + #s
        if size > limit then
            error(TOO_LARGE, 0)
        end
        sink:put(s)
    end
    local function put_string(v)
        local len = #v
        if len <= SHORT then
            put('"')
            if str_find(v, ESCAPE) then
                put((str_gsub(v, ESCAPE, escapes)))
            else
                put(v)
            end
            put('"')
            return
        end
        if len <= PIECE then
            put(cjson_encode(v))
        else
            put('"')
            for i = 1, len, PIECE do
                put(str_sub(cjson_encode(str_sub(v, i, i + PIECE - 1)), 2, -2))
                if sink_len(sink) >= CHUNK_BYTES then
                    cut()
                end
                if b then
                    b:check()
                end
            end
            put('"')
        end
        -- a long string is a large unit of work: read the clock now
        if b then
            b:check()
        end
    end
    local function enc(v, depth)
        if sink_len(sink) >= CHUNK_BYTES then
            cut()
        end
        local t = type(v)
        if t == "string" then
            put_string(v)
        elseif t == "number" then
            if v ~= v or v == math_huge or v == -math_huge then
                put("null")
            else
                local int = v == math_floor(v) and v > -9007199254740992
                            and v < 9007199254740992
                put(str_format(int and "%d" or "%.17g", v))
            end
        elseif t == "boolean" then
            put(v and "true" or "false")
        elseif t == "table" and depth < MAX_DEPTH then
            if b then
                b:step()
            end
            local mt = getmetatable(v)
            if mt == raw_mt then
                put(v[1])
            elseif mt == array_mt or rawget(v, 1) ~= nil then
                put("[")
                for i = 1, #v do
                    if i > 1 then
                        put(",")
                    end
                    enc(v[i], depth + 1)
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
                    put_string(type(k) == "string" and k or tostring(k))
                    put(":")
                    enc(x, depth + 1)
                end
                put("}")
            end
        else
            put("null")
        end
    end
    local ok, err = pcall(enc, value, 0)
    if not ok then
        if err == TOO_LARGE then
            return nil, size
        end
        error(err, 0)
    end
    cut()
    return chunks, total
end

function _M.encode(value, b)
    return tbl_concat((_M.encode_chunks(value, b)))
end

_M.decode = cjson.decode

-- The encoder runs interpreted: its work is in C (cjson, the buffer) and the
-- shapes it meets vary, so tracing it compiled up to ten traces back to back
-- within one slice of a large answer (2-3.5 ms holding the worker; measured
-- on Lua.getStack at the largest limits), for no gain in speed.
jit.off(_M.encode_chunks, true)

return _M
