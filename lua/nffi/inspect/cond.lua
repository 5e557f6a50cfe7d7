-- Breakpoint conditions and logpoint templates: side-effect-free Lua
-- expressions. Checked statically before anything is armed (tokenized: no
-- assignment, no `function`, no `:` method calls, calls only to a whitelist of
-- pure functions), then compiled with loadstring and run in a read-only
-- environment that resolves names to the breakpoint frame's locals, then its
-- upvalues, then globals. The whitelisted roots (string, math, type, ngx, ...)
-- always resolve to the agent's own safe tables, never to a user local.
-- Known limit: indexing a user table with an __index function, comparing or
-- concatenating values with metamethods still runs those metamethods.
local ngx = ngx
local type = type
local rawget = rawget
local tostring = tostring
local tonumber = tonumber
local select = select
local setmetatable = setmetatable
local setfenv = setfenv
local loadstring = loadstring
local error = error
local debug_getmetatable = debug.getmetatable
local str_sub = string.sub
local str_find = string.find
local str_match = string.match
local tbl_concat = table.concat

local _M = { _VERSION = "0.1.0" }

local MAX_LEN = 1000

-- Variables of the current hit, set by the hook right before a call (the hook
-- never yields, so one set at a time is enough). NIL marks a nil local.
local NIL = {}
_M.NIL = NIL
local cur_locals, cur_upvalues = {}, {}

function _M.set_frame(locals, upvalues)
    cur_locals, cur_upvalues = locals, upvalues
end

local function safe_tostring(v)
    local t = type(v)
    if t == "string" or t == "number" or t == "boolean" or t == "nil" then
        return tostring(v)
    end
    if t == "table" or t == "userdata" then
        if debug_getmetatable(v) ~= nil then
            return t  -- never __tostring
        end
        return tostring(v)
    end
    return t
end
_M.tostring = safe_tostring

local function copy_fields(src, names)
    local out = {}
    for i = 1, #names do
        out[names[i]] = src[names[i]]
    end
    return out
end

local string_names = { "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
                       "match", "reverse", "sub", "upper" }  -- no rep, no dump
local math_names = { "abs", "ceil", "floor", "fmod", "huge", "max", "min", "modf", "pi",
                     "sqrt", "exp", "log", "log10", "pow", "sin", "cos", "tan" }

local function ro(t)
    return setmetatable({}, { __index = t, __newindex = function()
        error("read-only", 2)
    end, __metatable = false })
end

local var_proxy = ro(setmetatable({}, { __index = function(_, k)
    return ngx.var[k]
end }))
local ctx_proxy = ro(setmetatable({}, { __index = function(_, k)
    return rawget(ngx.ctx, k)
end }))

-- name -> value, and the callable paths allowed
local roots = {
    string = ro(copy_fields(string, string_names)),
    math = ro(copy_fields(math, math_names)),
    type = type,
    tostring = safe_tostring,
    tonumber = tonumber,
    select = select,
    ngx = ro({
        var = var_proxy,
        ctx = ctx_proxy,
        req = ro({ get_method = ngx.req.get_method, get_headers = ngx.req.get_headers }),
        worker = ro({ id = ngx.worker.id }),
        get_phase = ngx.get_phase,
    }),
}
local callable = { type = true, tostring = true, tonumber = true, select = true,
                   ["ngx.req.get_method"] = true, ["ngx.req.get_headers"] = true,
                   ["ngx.worker.id"] = true, ["ngx.get_phase"] = true }
for i = 1, #string_names do
    callable["string." .. string_names[i]] = true
end
for i = 1, #math_names do
    callable["math." .. math_names[i]] = true
end

local env = setmetatable({}, {
    __index = function(_, k)
        local v = roots[k]
        if v ~= nil then
            return v
        end
        v = cur_locals[k]
        if v ~= nil then
            if v == NIL then
                return nil
            end
            return v
        end
        v = cur_upvalues[k]
        if v ~= nil then
            if v == NIL then
                return nil
            end
            return v
        end
        return rawget(_G, k)
    end,
    __newindex = function()
        error("conditions cannot assign", 2)
    end,
    __metatable = false,
})

local keywords = {}
for w in ("and break do else elseif end false for function if in local nil not or repeat "
          .. "return then true until while goto"):gmatch("%a+") do
    keywords[w] = true
end

-- Tokens: { kind, text } with kind name/keyword/number/string/op. Returns nil, reason.
local function tokenize(src)
    local toks, i, n = {}, 1, #src
    while i <= n do
        local c = str_sub(src, i, i)
        if str_find(c, "^%s") then
            i = i + 1
        elseif str_sub(src, i, i + 1) == "--" then
            local lvl = str_match(src, "^%-%-%[(=*)%[", i)
            if lvl then
                local _, e = str_find(src, "]" .. lvl .. "]", i, true)
                if not e then
                    return nil, "unfinished comment"
                end
                i = e + 1
            else
                local e = str_find(src, "\n", i, true)
                i = (e or n) + 1
            end
        elseif str_find(c, "^[%a_]") then
            local w = str_match(src, "^[%w_]+", i)
            toks[#toks + 1] = { keywords[w] and "keyword" or "name", w }
            i = i + #w
        elseif str_find(c, "^%d") or (c == "." and str_find(src, "^%.%d", i)) then
            local num = str_match(src, "^0[xX]%x+", i)
                        or str_match(src, "^[%d%.]+[eE][%+%-]?%d+", i)
                        or str_match(src, "^[%d%.]+", i)
            toks[#toks + 1] = { "number", num }
            i = i + #num
        elseif c == '"' or c == "'" then
            local j = i + 1
            while true do
                local d = str_sub(src, j, j)
                if d == "" or d == "\n" then
                    return nil, "unfinished string"
                elseif d == "\\" then
                    j = j + 2
                elseif d == c then
                    break
                else
                    j = j + 1
                end
            end
            toks[#toks + 1] = { "string", str_sub(src, i, j) }
            i = j + 1
        elseif c == "[" and str_find(src, "^%[=*%[", i) then
            local lvl = str_match(src, "^%[(=*)%[", i)
            local _, e = str_find(src, "]" .. lvl .. "]", i, true)
            if not e then
                return nil, "unfinished long string"
            end
            toks[#toks + 1] = { "string", str_sub(src, i, e) }
            i = e + 1
        else
            local op = str_match(src, "^%.%.%.", i) or str_match(src, "^[=~<>]=", i)
                       or str_match(src, "^%.%.", i) or str_match(src, "^::", i) or c
            toks[#toks + 1] = { "op", op }
            i = i + #op
        end
    end
    return toks
end
_M.tokenize = tokenize

-- The dotted path a call at token index i (the "(", "{" or string) applies to.
local function callee_path(toks, i)
    local j = i - 1
    local t = toks[j]
    if not t or t[1] ~= "name" then
        return nil
    end
    local parts = { t[2] }
    j = j - 1
    while toks[j] and toks[j][1] == "op" and toks[j][2] == "." and toks[j - 1]
          and toks[j - 1][1] == "name" do
        table.insert(parts, 1, toks[j - 1][2])
        j = j - 2
    end
    return tbl_concat(parts, ".")
end

-- nil, reason when expr is not allowed.
local function check(expr)
    if type(expr) ~= "string" or expr == "" then
        return nil, "empty expression"
    end
    if #expr > MAX_LEN then
        return nil, "expression longer than " .. MAX_LEN .. " bytes"
    end
    local toks, err = tokenize(expr)
    if not toks then
        return nil, err
    end
    for i = 1, #toks do
        local kind, text = toks[i][1], toks[i][2]
        if kind == "keyword" and text ~= "and" and text ~= "or" and text ~= "not"
           and text ~= "nil" and text ~= "true" and text ~= "false" then
            return nil, "'" .. text .. "' is not allowed in an expression"
        end
        if kind == "op" and (text == "=" or text == ";") then
            return nil, "assignment is not allowed"
        end
        if kind == "op" and (text == ":" or text == "::") then
            return nil, "method calls with ':' are not allowed"
        end
        local prev = toks[i - 1]
        local is_call = prev and (prev[1] == "name" or (prev[1] == "op"
                        and (prev[2] == ")" or prev[2] == "]")))
                        and ((kind == "op" and (text == "(" or text == "{")) or kind == "string")
        if is_call then
            local path = callee_path(toks, i)
            -- a name right after "." or ")" must come from a path like a.b(...)
            if not path or not callable[path] then
                return nil, "call to " .. (path or "an expression") .. " is not allowed"
                            .. " (allowed: string.*, math.*, type, tostring, tonumber, select,"
                            .. " ngx.req.get_method, ngx.req.get_headers, ngx.worker.id,"
                            .. " ngx.get_phase)"
            end
        end
    end
    return true
end
_M.check = check

-- A compiled expression: fn() evaluated in the read-only environment.
function _M.compile(expr)
    local ok, err = check(expr)
    if not ok then
        return nil, err
    end
    local fn, serr = loadstring("return " .. expr, "=condition")
    if not fn then
        return nil, "syntax error: " .. tostring(serr):gsub("^condition:%d+: ", "")
    end
    setfenv(fn, env)
    return fn
end

-- A logpoint template: "n={n} user={ctx.user}" -> list of strings and fns.
function _M.compile_template(tpl)
    if type(tpl) ~= "string" then
        return nil, "log must be a string"
    end
    local parts, i = {}, 1
    while i <= #tpl do
        local s = str_find(tpl, "{", i, true)
        if not s then
            parts[#parts + 1] = str_sub(tpl, i)
            break
        end
        if s > i then
            parts[#parts + 1] = str_sub(tpl, i, s - 1)
        end
        local e = str_find(tpl, "}", s, true)
        if not e then
            return nil, "unclosed '{' at " .. s
        end
        local fn, err = _M.compile(str_sub(tpl, s + 1, e - 1))
        if not fn then
            return nil, "{" .. str_sub(tpl, s + 1, e - 1) .. "}: " .. err
        end
        parts[#parts + 1] = fn
        i = e + 1
    end
    return parts
end

-- Renders a compiled template (may raise: the caller runs it under pcall).
function _M.render(parts)
    local out = {}
    for i = 1, #parts do
        local p = parts[i]
        if type(p) == "string" then
            out[i] = p
        else
            out[i] = safe_tostring(p())
        end
    end
    return tbl_concat(out)
end

return _M
