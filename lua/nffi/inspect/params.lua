-- The parameters of every request the agent serves, checked in one place
-- (link.lua) before anything acts on them: types, finite numbers, integer
-- ranges, string lengths. A frame comes from a probe, and a probe is not
-- trusted (DESIGN.md, trust model). The tables below mirror the agent's
-- commands in probe/protocol.json (name, type, optional, minimum,
-- exclusiveMinimum, maximum, clamp, minLength, maxLength, maxExpressions:
-- {…} in a log template, $ref);
-- test/hostile-frames.test.ts fails when the two differ. A handler gets a
-- fresh table holding only the declared fields: nothing undeclared, no JSON
-- null, no NaN or infinity ever reaches it.
local cjson_null = require("cjson.safe").null

local type = type
local next = next
local rawget = rawget
local tostring = tostring
local getmetatable = getmetatable
local str_format = string.format
local str_gsub = string.gsub
local math_floor = math.floor
local math_huge = math.huge

local _M = { _VERSION = "0.1.0" }

-- Whole numbers a double holds exactly (ids, coroutine ids).
local MAX_SAFE = 9007199254740991

local BREAKPOINT_SPEC = {
    { name = "url", type = "string", minLength = 1, maxLength = 4096 },
    { name = "line", type = "integer", optional = true, minimum = 1, maximum = 1000000000 },
    -- cond.lua refuses expressions over 1000 bytes; a template compiles one
    -- expression per {…} (~16 µs each), hence maxExpressions
    { name = "condition", type = "string", optional = true, maxLength = 1000 },
    { name = "log", type = "string", optional = true, maxLength = 1000, maxExpressions = 32 },
    -- clients ask for "no limit" with 1e9: any finite value is safe, the maxima
    -- only keep numbers sane
    { name = "count", type = "integer", optional = true, minimum = 1,
      maximum = 1000000000000 },
    { name = "rate", type = "number", optional = true, exclusiveMinimum = 0,
      maximum = 1000000000000 },
    { name = "timeout_ms", type = "integer", optional = true, minimum = 1,
      maximum = 1000000000000 },
}

_M.types = {
    ["Debugger.BreakpointSpec"] = BREAKPOINT_SPEC,
}

-- Values above a `clamp` maximum are taken as the maximum (the most one
-- answer holds); above any other maximum they are refused.
_M.commands = {
    ["Agent.detach"] = {},
    ["Agent.getStats"] = {},
    ["Lua.getCoroutines"] = {
        { name = "frames", type = "integer", optional = true, minimum = 0, maximum = 50,
          clamp = true },
        { name = "skip", type = "string", optional = true, maxLength = 2000 },
        { name = "since", type = "integer", optional = true, minimum = 0, maximum = MAX_SAFE },
    },
    ["Lua.getStack"] = {
        { name = "coroutine", type = "integer", minimum = 1, maximum = MAX_SAFE },
        { name = "locals", type = "boolean", optional = true },
        { name = "depth", type = "integer", optional = true, minimum = 0, maximum = 8,
          clamp = true },
        { name = "keys", type = "integer", optional = true, minimum = 0, maximum = 1000,
          clamp = true },
        { name = "string_bytes", type = "integer", optional = true, minimum = 0,
          maximum = 65536, clamp = true },
    },
    ["FFI.getRuntimes"] = {},
    ["FFI.getTasks"] = {
        { name = "older_than_ms", type = "number", optional = true, minimum = 0,
          maximum = 1000000000000 },
        { name = "max", type = "integer", optional = true, minimum = 0, maximum = 1000,
          clamp = true },
        { name = "after_id", type = "integer", optional = true, minimum = 0, maximum = MAX_SAFE },
        { name = "total", type = "boolean", optional = true },
        { name = "skip", type = "string", optional = true, maxLength = 2000 },
    },
    ["Debugger.setBreakpoint"] = {
        { name = "spec", ["$ref"] = "Debugger.BreakpointSpec" },
        { name = "id", type = "integer", optional = true, minimum = 1, maximum = MAX_SAFE },
    },
    ["Debugger.removeBreakpoint"] = {
        { name = "id", type = "integer", minimum = 1, maximum = MAX_SAFE },
    },
    ["Debugger.getBreakpoints"] = {},
    ["Debugger.getScripts"] = {},
}

-- A request id: what the probe counts with (1, 2, …).
function _M.valid_id(id)
    return type(id) == "number" and id >= 0 and id <= MAX_SAFE and id == math_floor(id)
end

local function number_text(n)
    if n == math_floor(n) and n > -1e15 and n < 1e15 then
        return str_format("%d", n)
    end
    return str_format("%.17g", n)
end

-- A JSON array (cjson marks decoded arrays, even empty ones) or a Lua list.
local array_mt = require("cjson.safe").array_mt

local function is_object(v)
    if type(v) ~= "table" then
        return false
    end
    local mt = getmetatable(v)
    return (array_mt == nil or mt ~= array_mt) and rawget(v, 1) == nil
end

local check_object

local function check(v, d, path)
    local ref = d["$ref"]
    if ref then
        if not is_object(v) then
            return nil, path .. " must be an object"
        end
        return check_object(v, _M.types[ref], path .. ".")
    end
    local t = d.type
    if t == "integer" or t == "number" then
        local what = t == "integer" and "an integer" or "a number"
        if type(v) ~= "number" then
            return nil, path .. " must be " .. what
        end
        if v ~= v or v == math_huge or v == -math_huge then
            return nil, path .. " must be a finite number"
        end
        if t == "integer" and v ~= math_floor(v) then
            return nil, path .. " must be an integer"
        end
        local min, xmin = d.minimum, d.exclusiveMinimum
        if (min and v < min) or (xmin and v <= xmin) then
            if min == 0 then
                return nil, path .. " must be a non-negative " .. (t == "integer" and "integer"
                                                                   or "number")
            elseif min == 1 or xmin == 0 then
                return nil, path .. " must be a positive number"
            end
            return nil, path .. " must be at least " .. number_text(min or xmin)
        end
        if d.maximum and v > d.maximum then
            if d.clamp then
                return d.maximum
            end
            return nil, path .. " must be at most " .. number_text(d.maximum)
        end
        return v
    elseif t == "string" then
        if type(v) ~= "string" then
            return nil, path .. " must be a string"
        end
        if d.minLength and #v < d.minLength then
            return nil, path .. " must not be empty"
        end
        if d.maxLength and #v > d.maxLength then
            return nil, path .. " is longer than " .. d.maxLength .. " bytes (" .. #v .. ")"
        end
        if d.maxExpressions then
            local _, n = str_gsub(v, "{", "")
            if n > d.maxExpressions then
                return nil, path .. " has more than " .. d.maxExpressions .. " {expressions} ("
                            .. n .. ")"
            end
        end
        return v
    elseif t == "boolean" then
        if type(v) ~= "boolean" then
            return nil, path .. " must be true or false"
        end
        return v
    end
    return nil, path .. ": no such parameter type " .. tostring(t)
end

-- A fresh table with the declared fields of obj, each checked; JSON null is
-- taken as absent. prefix: "" for a request's params, "spec." inside it.
check_object = function(obj, decl, prefix)
    local out = {}
    for i = 1, #decl do
        local d = decl[i]
        local name = d.name
        local v = rawget(obj, name)
        if v == cjson_null then
            v = nil
        end
        if v == nil then
            if not d.optional then
                return nil, prefix .. name .. " is required"
            end
        else
            local ok, err = check(v, d, prefix .. name)
            if ok == nil then
                return nil, err
            end
            out[name] = ok
        end
    end
    return out
end

-- The checked params of a request for method (a key of _M.commands), or nil
-- and the reason the client shows. params: as decoded (nil or null: none).
function _M.check(method, params)
    local decl = _M.commands[method]
    if not decl then
        return nil, "no parameters are declared for " .. tostring(method)
    end
    if params == nil or params == cjson_null then
        params = {}
    elseif not is_object(params) then
        return nil, "params must be an object"
    end
    return check_object(params, decl, "")
end

-- Every declared command, for link.lua to check its dispatch table against.
function _M.methods()
    local out = {}
    for name in next, _M.commands do
        out[name] = true
    end
    return out
end

return _M
