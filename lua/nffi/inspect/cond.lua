-- Breakpoint conditions and logpoint templates: Lua expressions that read,
-- never call the program, write or run unbounded (DESIGN.md, Trust model).
-- Not run by Lua: tokenized and parsed here (no assignment, function, table
-- constructor, method call or vararg; a call only to a built-in named by its
-- path), then compiled to a tree of closures whose every operation is raw
-- (cond_lib.lua: no metamethod of the program runs, no value of the program
-- is ever called) and paid from a per-hit budget: set_frame starts a hit with
-- a full one; past it evaluation raises and the breakpoint is removed.
-- Names resolve to the frame's locals, then its upvalues, else nil: globals
-- are never read. `ngx`, `string` and `math` are the built-ins' roots, never
-- a local of that name: ngx.var.NAME, ngx.var[expr] and ngx.ctx.KEY read the
-- current request; math.pi and math.huge are values; the rest are calls.
local lib = require "nffi.inspect.cond_lib"

local type = type
local error = error
local pcall = pcall
local select = select
local unpack = unpack
local rawequal = rawequal
local tostring = tostring
local tonumber = tonumber
local loadstring = loadstring
local str_sub = string.sub
local str_find = string.find
local str_match = string.match
local str_gsub = string.gsub
local str_gmatch = string.gmatch
local tbl_concat = table.concat
local charge = lib.charge
local eq, lt, le = lib.eq, lib.lt, lib.le
local rawget = rawget
local ipairs = ipairs
local arith, unm, concat, len, index = lib.arith, lib.unm, lib.concat, lib.len, lib.index
local ngx_var, request_ctx = lib.ngx_var, lib.request_ctx
local builtins, constants = lib.builtins, lib.constants
local safe_tostring = lib.tostring

local _M = { _VERSION = "0.2.0" }

local MAX_LEN = 1000        -- bytes of one expression
local MAX_DEPTH = 50        -- nesting of one expression
local MAX_ARGS = 20         -- arguments of one call

-- Variables of the current hit, set by the hook right before a call (the hook
-- never yields, so one set at a time is enough). NIL marks a nil local.
local NIL = {}
_M.NIL = NIL
local cur_locals, cur_upvalues = {}, {}

-- A new hit (or the end of one): its variables and a full budget.
function _M.set_frame(locals, upvalues)
    cur_locals, cur_upvalues = locals, upvalues
    lib.reset()
end

_M.tostring = safe_tostring
_M.BUDGET = lib.BUDGET

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

-- Parser ------------------------------------------------------------------------

-- A parse error: caught by compile, never seen by the hook.
local function fail(msg)
    error({ msg = msg }, 0)
end

local function near(ps)
    local t = ps.toks[ps.i]
    return t and ("'" .. t[2] .. "'") or "<eof>"
end

local function syntax(ps, what)
    fail("syntax error: " .. what .. " near " .. near(ps))
end

local function is_op(t, text)
    return t ~= nil and t[1] == "op" and t[2] == text
end

local function expect(ps, text)
    if not is_op(ps.toks[ps.i], text) then
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

-- A read of a dotted path (no call): the request reads and math constants for
-- the reserved roots, else a frame variable and raw field reads.
local function resolve(path)
    local parts = {}
    for w in str_gmatch(path, "[^.]+") do
        parts[#parts + 1] = w
    end
    local root, node, from = parts[1], nil, 2
    if root == "ngx" then
        if parts[2] == "ctx" then
            node, from = { k = "ctx", desc = "ngx.ctx" }, 3
        elseif parts[2] == "var" and parts[3] then
            node, from = { k = "var", key = const(parts[3]), desc = "ngx.var." .. parts[3] }, 4
        else
            fail(path .. " cannot be read in a condition (from ngx: ngx.var.NAME, ngx.var[expr],"
                 .. " ngx.ctx.KEY, and calls to " .. lib.ALLOWED .. ")")
        end
    elseif root == "string" or root == "math" then
        local c = parts[2] and constants[root .. "." .. parts[2]]
        if c == nil then
            if builtins[root .. "." .. (parts[2] or "")] then
                fail(root .. "." .. parts[2] .. " is a function: only calls to it are allowed")
            end
            fail(path .. " cannot be read in a condition (string and math are the built-ins)")
        end
        node, from = const(c), 3
    else
        node = { k = "name", name = root, desc = "'" .. root .. "'" }
    end
    for i = from, #parts do
        node = { k = "index", o = node, key = const(parts[i]),
                 desc = node.desc and (str_gsub(node.desc, "'$", "") .. "." .. parts[i] .. "'")
                        or nil }
    end
    return node
end

local function call_args(ps)
    local t = ps.toks[ps.i]
    if t[1] == "string" then
        ps.i = ps.i + 1
        return { { k = "const", v = t.value } }
    end
    expect(ps, "(")
    local args = {}
    if not is_op(ps.toks[ps.i], ")") then
        repeat
            if #args >= MAX_ARGS then
                fail("more than " .. MAX_ARGS .. " arguments in one call")
            end
            args[#args + 1] = expr(ps, 0)
            local more = is_op(ps.toks[ps.i], ",")
            if more then
                ps.i = ps.i + 1
            end
        until not more
    end
    expect(ps, ")")
    return args
end

local function primary(ps)
    local t = ps.toks[ps.i]
    local node, path
    if t and t[1] == "name" then
        path = t[2]
        ps.i = ps.i + 1
    elseif is_op(t, "(") then
        ps.i = ps.i + 1
        node = { k = "paren", e = expr(ps, 0) }
        expect(ps, ")")
    else
        syntax(ps, "unexpected symbol")
    end
    while true do
        t = ps.toks[ps.i]
        if is_op(t, ".") then
            ps.i = ps.i + 1
            local nt = ps.toks[ps.i]
            if not nt or nt[1] ~= "name" then
                syntax(ps, "<name> expected")
            end
            ps.i = ps.i + 1
            if path then
                path = path .. "." .. nt[2]
            else
                node = { k = "index", o = node, key = const(nt[2]) }
            end
        elseif is_op(t, "[") then
            ps.i = ps.i + 1
            local key = expr(ps, 0)
            expect(ps, "]")
            if path == "ngx.var" then
                node = { k = "var", key = key, desc = "ngx.var[...]" }
            else
                if path then
                    node = resolve(path)
                end
                node = { k = "index", o = node, key = key }
            end
            path = nil
        elseif is_op(t, "(") or (t and t[1] == "string") then
            if not path then
                fail("call to an expression is not allowed (only built-ins are called: "
                     .. lib.ALLOWED .. ")")
            end
            local f = builtins[path]
            if not f then
                fail("call to " .. path .. " is not allowed (allowed: " .. lib.ALLOWED .. ")")
            end
            node = { k = "call", f = f, name = path, args = call_args(ps) }
            path = nil
        else
            break
        end
    end
    if path then
        node = resolve(path)
    end
    return node
end

local function simple(ps)
    local t = ps.toks[ps.i]
    if not t then
        syntax(ps, "unexpected symbol")
    end
    local kind, text = t[1], t[2]
    if kind == "number" or kind == "string" then
        ps.i = ps.i + 1
        return const(t.value)
    elseif kind == "keyword" and (text == "nil" or text == "true" or text == "false") then
        ps.i = ps.i + 1
        if text == "nil" then
            return const(nil)
        end
        return const(text == "true")
    end
    return primary(ps)
end

expr = function(ps, limit)
    local depth = ps.depth + 1
    if depth > MAX_DEPTH then
        fail("expression nested deeper than " .. MAX_DEPTH)
    end
    ps.depth = depth
    local t = ps.toks[ps.i]
    local node
    if t and ((t[1] == "keyword" and t[2] == "not") or is_op(t, "-") or is_op(t, "#")) then
        ps.i = ps.i + 1
        node = { k = "unary", op = t[2], e = expr(ps, UNARY) }
    else
        node = simple(ps)
    end
    while true do
        t = ps.toks[ps.i]
        local op = t and (t[1] == "op" or t[1] == "keyword") and t[2]
        local prio = op and BINARY[op]
        if not prio or prio[1] <= limit then
            break
        end
        ps.i = ps.i + 1
        node = { k = "binary", op = op, l = node, r = expr(ps, prio[2]) }
    end
    ps.depth = depth - 1
    return node
end

-- Tokens checked one by one (the messages users see for the common mistakes),
-- literals decoded.
local function check_tokens(toks)
    for i = 1, #toks do
        local t = toks[i]
        local kind, text = t[1], t[2]
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
            t.value = tonumber(text)
            if not t.value then
                fail("syntax error: malformed number near '" .. text .. "'")
            end
        elseif kind == "string" then
            -- one string token, nothing else: loading it only makes the string
            local f = loadstring("return " .. text, "=string")
            local ok, v = pcall(f or error)
            if not f or not ok or type(v) ~= "string" then
                fail("syntax error: invalid string near " .. str_sub(text, 1, 20))
            end
            t.value = v
        end
    end
end

local function parse(src)
    if type(src) ~= "string" or not str_find(src, "%S") then
        fail("empty expression")
    end
    if #src > MAX_LEN then
        fail("expression longer than " .. MAX_LEN .. " bytes")
    end
    local toks, err = tokenize(src)
    if not toks then
        fail("syntax error: " .. err)
    end
    check_tokens(toks)
    local ps = { toks = toks, i = 1, depth = 0 }
    local node = expr(ps, 0)
    if ps.toks[ps.i] then
        syntax(ps, "'<eof>' expected")
    end
    return node
end

-- Compiler: AST -> closures ---------------------------------------------------
-- No loop, recursion or call of compiled code exists in the language, so each
-- node runs at most once per evaluation: an expression is charged its node
-- count once, up front; what depends on the data (the bytes a built-in
-- scans or makes, a pattern's backtracking, a table's border) is charged by
-- the built-ins themselves (cond_lib.lua). Common cases are inlined (plain
-- values, tables); everything else goes through cond_lib's raw operations.

local gen

local function pack(...)
    return { n = select("#", ...), ... }
end

local function gen_call(node)
    local f, args = node.f, {}
    for i = 1, #node.args do
        args[i] = gen(node.args[i])
    end
    local n = #args
    if n == 0 then
        return function() return f() end
    elseif n == 1 then
        local a = args[1]
        return function() return f(a()) end
    elseif n == 2 then
        local a, b = args[1], args[2]
        return function() return f(a(), b()) end
    elseif n == 3 then
        local a, b, c = args[1], args[2], args[3]
        return function() return f(a(), b(), c()) end
    elseif n == 4 then
        local a, b, c, d = args[1], args[2], args[3], args[4]
        return function() return f(a(), b(), c(), d()) end
    end
    return function()
        local vals = {}
        for i = 1, n - 1 do
            vals[i] = (args[i]())
        end
        local last = pack(args[n]())  -- the last argument gives all its values
        for j = 1, last.n do
            vals[n - 1 + j] = last[j]
        end
        return f(unpack(vals, 1, n - 1 + last.n))
    end
end

local function gen_compare(op, l, r)
    if op == "==" then
        return function()
            local a, b = l(), r()
            if rawequal(a, b) then
                return true
            end
            return eq(a, b)
        end
    elseif op == "~=" then
        return function()
            local a, b = l(), r()
            if rawequal(a, b) then
                return false
            end
            return not eq(a, b)
        end
    end
    -- a > b is b < a, as in Lua; both operands evaluated left to right
    local swap = op == ">" or op == ">="
    local strict = op == "<" or op == ">"
    local slow = strict and lt or le
    return function()
        local a, b = l(), r()
        if swap then
            a, b = b, a
        end
        if type(a) == "number" and type(b) == "number" then
            if strict then
                return a < b
            end
            return a <= b
        end
        return slow(a, b)
    end
end

local function gen_binary(node)
    local op, l, r = node.op, gen(node.l), gen(node.r)
    if op == "and" then
        return function()
            local a = l()
            if not a then
                return a
            end
            return (r())
        end
    elseif op == "or" then
        return function()
            local a = l()
            if a then
                return a
            end
            return (r())
        end
    elseif op == "==" or op == "~=" or op == "<" or op == "<=" or op == ">" or op == ">=" then
        return gen_compare(op, l, r)
    elseif op == ".." then
        return function() return concat(l(), r()) end
    end
    local fn = arith[op]
    return function() return fn(l(), r()) end
end

gen = function(node)
    local k = node.k
    if k == "const" then
        local v = node.v
        return function() return v end
    elseif k == "name" then
        local name = node.name
        return function()
            local v = cur_locals[name]
            if rawequal(v, nil) then
                v = cur_upvalues[name]
            end
            if rawequal(v, NIL) then
                return nil
            end
            return v
        end
    elseif k == "index" then
        local o, key, desc = gen(node.o), gen(node.key), node.o.desc
        return function()
            local t = o()
            if type(t) == "table" then
                return rawget(t, key())
            end
            return index(t, key(), desc)
        end
    elseif k == "var" then
        local key = gen(node.key)
        return function() return ngx_var(key()) end
    elseif k == "ctx" then
        return request_ctx
    elseif k == "paren" then
        local e = gen(node.e)
        return function() return (e()) end
    elseif k == "call" then
        return gen_call(node)
    elseif k == "unary" then
        local e = gen(node.e)
        if node.op == "not" then
            return function() return not e() end
        elseif node.op == "-" then
            return function() return unm(e()) end
        end
        return function() return len(e()) end
    end
    return gen_binary(node)
end

local function count_nodes(node)
    local n = 1
    for _, f in ipairs({ "o", "key", "e", "l", "r" }) do
        if node[f] then
            n = n + count_nodes(node[f])
        end
    end
    if node.args then
        for i = 1, #node.args do
            n = n + count_nodes(node.args[i])
        end
    end
    return n
end

-- nil, reason when expr is not allowed; true otherwise.
local function check(src)
    local ok, err = pcall(parse, src)
    if not ok then
        return nil, type(err) == "table" and err.msg or tostring(err)
    end
    return true
end
_M.check = check

-- A compiled expression: fn() gives its value (raises on a type error or
-- when the hit's budget is spent: the caller runs it under pcall).
function _M.compile(src)
    local ok, node = pcall(parse, src)
    if not ok then
        return nil, type(node) == "table" and node.msg or tostring(node)
    end
    local root, nodes = gen(node), count_nodes(node)
    return function()
        charge(nodes)
        return (root())
    end
end

-- A logpoint template: "n={n} user={ctx.user}" -> list of strings and fns.
function _M.compile_template(tpl)
    if type(tpl) ~= "string" then
        return nil, "log must be a string"
    end
    if #tpl > 4 * MAX_LEN then
        return nil, "log longer than " .. 4 * MAX_LEN .. " bytes"
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
    local out, size = {}, 0
    for i = 1, #parts do
        local p = parts[i]
        local s = type(p) == "string" and p or safe_tostring(p())
        size = size + #s
        if size > lib.MAX_STRING then
            error("message longer than " .. lib.MAX_STRING .. " bytes", 0)
        end
        charge(1 + #s / 32)
        out[i] = s
    end
    return tbl_concat(out)
end

return _M
