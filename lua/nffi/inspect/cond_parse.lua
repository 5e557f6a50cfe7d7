-- The parser of conditions and log templates (cond.lua): tokens (cond_lex.lua)
-- checked and parsed into a tree of nodes, refusing what the language leaves
-- out (assignment, function, table constructor, method call, vararg; a call
-- only to a built-in named by its path, cond_lib.lua). Errors are raised as
-- { msg = ... }: caught by cond.lua, never seen by the hook.
local lib = require "nffi.inspect.cond_lib"
local lex = require "nffi.inspect.cond_lex"

local type = type
local error = error
local pcall = pcall
local tonumber = tonumber
local loadstring = loadstring
local str_sub = string.sub
local str_byte = string.byte
local str_find = string.find
local tbl_concat = table.concat
local ipairs = ipairs
local jit_off = jit.off
local tokenize = lex.tokenize
local builtins, constants = lib.builtins, lib.constants

local _M = { _VERSION = "0.1.0" }

local MAX_LEN = 1000        -- bytes of one expression
local MAX_DEPTH = 50        -- nesting of one expression
local MAX_ARGS = 20         -- arguments of one call
_M.MAX_LEN = MAX_LEN

-- ps: { kinds, texts, values (the token arrays), i (the next token), depth,
-- b (the budget every token and node is a step of) }

-- A parse error: caught by compile, never seen by the hook.
local function fail(msg)
    error({ msg = msg }, 0)
end

local function near(ps)
    local t = ps.texts[ps.i]
    return t and ("'" .. t .. "'") or "<eof>"
end

local function syntax(ps, what)
    fail("syntax error: " .. what .. " near " .. near(ps))
end

-- Is the next token the operator text?
local function is_op(ps, text)
    local i = ps.i
    return ps.texts[i] == text and ps.kinds[i] == "op"
end

local function expect(ps, text)
    if not is_op(ps, text) then
        syntax(ps, "'" .. text .. "' expected")
    end
    ps.i = ps.i + 1
end

-- {left, right} priorities, as Lua's parser
local BINARY = {
    ["+"] = { 6, 6 }, ["-"] = { 6, 6 }, ["*"] = { 7, 7 }, ["/"] = { 7, 7 }, ["%"] = { 7, 7 },
    ["^"] = { 10, 9 }, [".."] = { 5, 4 },
    ["=="] = { 3, 3 }, ["~="] = { 3, 3 }, ["<"] = { 3, 3 }, ["<="] = { 3, 3 },
    [">"] = { 3, 3 }, [">="] = { 3, 3 }, ["and"] = { 2, 2 }, ["or"] = { 1, 1 },
}
local UNARY = 8

local expr

local function const(v)
    return { k = "const", v = v }
end

-- A read of a dotted path (no call), parts[1..n] its names: the request
-- reads and math constants for the reserved roots, else a frame variable and
-- raw field reads.
local function resolve(parts, n)
    local root, node, from = parts[1], nil, 2
    if root == "ngx" then
        if parts[2] == "ctx" then
            node, from = { k = "ctx", desc = "ngx.ctx" }, 3
        elseif parts[2] == "var" and n >= 3 then
            node, from = { k = "var", key = const(parts[3]), desc = "ngx.var." .. parts[3] }, 4
        else
            fail(tbl_concat(parts, ".", 1, n) .. " cannot be read in a condition (from ngx:"
                 .. " ngx.var.NAME, ngx.var[expr], ngx.ctx.KEY, and calls to " .. lib.ALLOWED
                 .. ")")
        end
    elseif root == "string" or root == "math" then
        local c
        if n >= 2 then
            c = constants[root .. "." .. parts[2]]
        end
        if c == nil then
            if builtins[root .. "." .. (n >= 2 and parts[2] or "")] then
                fail(root .. "." .. parts[2] .. " is a function: only calls to it are allowed")
            end
            fail(tbl_concat(parts, ".", 1, n)
                 .. " cannot be read in a condition (string and math are the built-ins)")
        end
        node, from = const(c), 3
    else
        node = { k = "name", name = root, desc = "'" .. root .. "'" }
    end
    for i = from, n do
        local desc = node.desc
        if desc then
            -- 'a.b' from 'a': the quote moves to the end
            if str_byte(desc, -1) == 39 then
                desc = str_sub(desc, 1, -2)
            end
            desc = desc .. "." .. parts[i] .. "'"
        end
        node = { k = "index", o = node, key = const(parts[i]), desc = desc }
    end
    return node
end

local function call_args(ps)
    local i = ps.i
    if ps.kinds[i] == "string" then
        ps.i = i + 1
        return { { k = "const", v = ps.values[i] } }
    end
    expect(ps, "(")
    local args = {}
    if not is_op(ps, ")") then
        repeat
            if #args >= MAX_ARGS then
                fail("more than " .. MAX_ARGS .. " arguments in one call")
            end
            args[#args + 1] = expr(ps, 0)
            local more = is_op(ps, ",")
            if more then
                ps.i = ps.i + 1
            end
        until not more
    end
    expect(ps, ")")
    return args
end

local function primary(ps)
    local kinds, texts = ps.kinds, ps.texts
    local node
    -- a dotted path being read (parts[1..np]), until a call, an index or its end
    local parts, np = nil, 0
    if kinds[ps.i] == "name" then
        parts, np = { texts[ps.i] }, 1
        ps.i = ps.i + 1
    elseif is_op(ps, "(") then
        ps.i = ps.i + 1
        node = { k = "paren", e = expr(ps, 0) }
        expect(ps, ")")
    else
        syntax(ps, "unexpected symbol")
    end
    while true do
        ps.b:step()
        local i = ps.i
        local kind, text = kinds[i], texts[i]
        if kind == "op" and text == "." then
            ps.i = i + 1
            if kinds[i + 1] ~= "name" then
                syntax(ps, "<name> expected")
            end
            ps.i = i + 2
            if parts then
                np = np + 1
                parts[np] = texts[i + 1]
            else
                node = { k = "index", o = node, key = const(texts[i + 1]) }
            end
        elseif kind == "op" and text == "[" then
            ps.i = i + 1
            local key = expr(ps, 0)
            expect(ps, "]")
            if np == 2 and parts[1] == "ngx" and parts[2] == "var" then
                node = { k = "var", key = key, desc = "ngx.var[...]" }
            else
                if parts then
                    node = resolve(parts, np)
                end
                node = { k = "index", o = node, key = key }
            end
            parts, np = nil, 0
        elseif (kind == "op" and text == "(") or kind == "string" then
            if not parts then
                fail("call to an expression is not allowed (only built-ins are called: "
                     .. lib.ALLOWED .. ")")
            end
            local path = tbl_concat(parts, ".", 1, np)
            local f = builtins[path]
            if not f then
                fail("call to " .. path .. " is not allowed (allowed: " .. lib.ALLOWED .. ")")
            end
            node = { k = "call", f = f, name = path, args = call_args(ps) }
            parts, np = nil, 0
        else
            break
        end
    end
    if parts then
        node = resolve(parts, np)
    end
    return node
end

local function simple(ps)
    local i = ps.i
    local kind, text = ps.kinds[i], ps.texts[i]
    if not kind then
        syntax(ps, "unexpected symbol")
    end
    if kind == "number" or kind == "string" then
        ps.i = i + 1
        return const(ps.values[i])
    elseif kind == "keyword" and (text == "nil" or text == "true" or text == "false") then
        ps.i = i + 1
        if text == "nil" then
            return const(nil)
        end
        return const(text == "true")
    end
    return primary(ps)
end

expr = function(ps, limit)
    ps.b:step()
    local depth = ps.depth + 1
    if depth > MAX_DEPTH then
        fail("expression nested deeper than " .. MAX_DEPTH)
    end
    ps.depth = depth
    local kinds, texts = ps.kinds, ps.texts
    local i = ps.i
    local kind, text = kinds[i], texts[i]
    local node
    if (kind == "keyword" and text == "not") or (kind == "op" and (text == "-" or text == "#")) then
        ps.i = i + 1
        node = { k = "unary", op = text, e = expr(ps, UNARY) }
    else
        node = simple(ps)
    end
    while true do
        i = ps.i
        kind = kinds[i]
        local op = (kind == "op" or kind == "keyword") and texts[i]
        local prio = op and BINARY[op]
        if not prio or prio[1] <= limit then
            break
        end
        ps.i = i + 1
        node = { k = "binary", op = op, l = node, r = expr(ps, prio[2]) }
    end
    ps.depth = depth - 1
    return node
end

-- Tokens checked one by one (the messages users see for the common mistakes),
-- literals decoded into values.
local function check_tokens(kinds, texts, n, b)
    local values = {}
    for i = 1, n do
        b:step()
        local kind, text = kinds[i], texts[i]
        if kind == "keyword" and text ~= "and" and text ~= "or" and text ~= "not"
           and text ~= "nil" and text ~= "true" and text ~= "false" then
            fail("'" .. text .. "' is not allowed in an expression")
        elseif kind == "op" then
            if text == "=" or text == ";" then
                fail("assignment is not allowed")
            elseif text == ":" or text == "::" then
                fail("method calls with ':' are not allowed")
            elseif text == "..." then
                fail("'...' is not allowed")
            elseif text == "{" then
                fail("table constructors are not allowed")
            end
        elseif kind == "number" then
            local v = tonumber(text)
            if not v then
                fail("syntax error: malformed number near '" .. text .. "'")
            end
            values[i] = v
        elseif kind == "string" then
            -- one string token, nothing else: loading it only makes the string
            local f = loadstring("return " .. text, "=string")
            local ok, v = pcall(f or error)
            if not f or not ok or type(v) ~= "string" then
                fail("syntax error: invalid string near " .. str_sub(text, 1, 20))
            end
            values[i] = v
        end
    end
    return values
end

local function parse(src, b)
    if type(src) ~= "string" or not str_find(src, "%S") then
        fail("empty expression")
    end
    if #src > MAX_LEN then
        fail("expression longer than " .. MAX_LEN .. " bytes")
    end
    local kinds, texts, n = tokenize(src, b)
    if not kinds then
        fail("syntax error: " .. texts)
    end
    local values = check_tokens(kinds, texts, n, b)
    local ps = { kinds = kinds, texts = texts, values = values, i = 1, depth = 0, b = b }
    local node = expr(ps, 0)
    if kinds[ps.i] then
        syntax(ps, "'<eof>' expected")
    end
    return node
end
_M.parse = parse

-- Interpreted, as the whole compiler (see the end of cond.lua).
for _, fn in ipairs({ fail, near, syntax, is_op, expect, const, resolve, call_args, primary,
                      simple, expr, check_tokens, parse }) do
    jit_off(fn)
end

return _M
