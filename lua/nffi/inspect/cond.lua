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
local str_byte = string.byte
local str_char = string.char
local str_find = string.find
local str_match = string.match
local tbl_concat = table.concat
local charge = lib.charge
local eq, lt, le = lib.eq, lib.lt, lib.le
local rawget = rawget
local ipairs = ipairs
local jit_off = jit.off
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

-- What compiling steps when no budget is given: nothing.
local function no_step() end
local NO_BUDGET = { step = no_step, check = no_step }

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

-- Byte classes for the tokenizer, from the patterns Lua's own lexer agrees
-- with (%s, [%a_], %d), so a token starts with one byte test.
local SPACE, NAME_START, DIGIT, CHAR = {}, {}, {}, {}
for c = 0, 255 do
    local ch = str_char(c)
    SPACE[c] = str_find(ch, "^%s") and true or nil
    NAME_START[c] = str_find(ch, "^[%a_]") and true or nil
    DIGIT[c] = str_find(ch, "^%d") and true or nil
    CHAR[c] = ch
end
-- what ends a quoted string's run of plain bytes: a backslash, a newline, its quote
local STRING_STOP = { [34] = '[\\\n"]', [39] = "[\\\n']" }

-- Tokens, as arrays (no table per token): kinds[i] (name, keyword, number,
-- string or op) and texts[i], and their count; check_tokens makes values[i]
-- for the literals. Returns nil, reason on a lexical error. A token is found with a byte test
-- and at most a pattern call or two (names, blanks, numbers and the plain
-- bytes of a string are each taken in one): 1,000 bytes in ~0.1 ms,
-- interpreted.
local function tokenize(src, b)
    local kinds, texts, nt, i, n = {}, {}, 0, 1, #src
    while i <= n do
        b:step()
        local c = str_byte(src, i)
        local c2 = str_byte(src, i + 1)
        local kind, text
        if SPACE[c] then
            local _, e = str_find(src, "^%s*", i + 1)
            i = e + 1
        elseif c == 45 and c2 == 45 then  -- "--"
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
        elseif NAME_START[c] then
            local _, e = str_find(src, "^[%w_]*", i + 1)
            text = str_sub(src, i, e)
            kind = keywords[text] and "keyword" or "name"
            i = e + 1
        elseif DIGIT[c] or (c == 46 and DIGIT[c2]) then
            -- 0x1F, else digits and dots with an exponent, else digits and dots
            local e
            if c == 48 and (c2 == 120 or c2 == 88) then
                local _, hex = str_find(src, "^%x+", i + 2)
                e = hex
            end
            if not e then
                local _, digits = str_find(src, "^[%d%.]+", i)
                local _, exp = str_find(src, "^[eE][%+%-]?%d+", digits + 1)
                e = exp or digits
            end
            kind, text = "number", str_sub(src, i, e)
            i = e + 1
        elseif c == 34 or c == 39 then  -- " '
            local stop, j = STRING_STOP[c], i + 1
            while true do
                local e = str_find(src, stop, j)
                local d = e and str_byte(src, e)
                if not d or d == 10 then
                    return nil, "unfinished string"
                elseif d == 92 then  -- a backslash: the byte after it is escaped
                    j = e + 2
                else
                    j = e
                    break
                end
            end
            kind, text = "string", str_sub(src, i, j)
            i = j + 1
        elseif c == 91 and str_find(src, "^%[=*%[", i) then
            local lvl = str_match(src, "^%[(=*)%[", i)
            local _, e = str_find(src, "]" .. lvl .. "]", i, true)
            if not e then
                return nil, "unfinished long string"
            end
            kind, text = "string", str_sub(src, i, e)
            i = e + 1
        else
            -- ... .. . | == ~= <= >= | :: | any other byte alone
            if c == 46 and c2 == 46 then
                text = str_byte(src, i + 2) == 46 and "..." or ".."
            elseif c2 == 61 and (c == 61 or c == 126 or c == 60 or c == 62) then
                text = CHAR[c] .. "="
            elseif c == 58 and c2 == 58 then
                text = "::"
            else
                text = CHAR[c]
            end
            kind = "op"
            i = i + #text
        end
        if kind then
            nt = nt + 1
            kinds[nt], texts[nt] = kind, text
        end
    end
    return kinds, texts, nt
end

-- { {kind, text}, ... } (the tests' view of the tokenizer).
function _M.tokenize(src)
    local kinds, texts, n = tokenize(src, NO_BUDGET)
    if not kinds then
        return nil, texts
    end
    local toks = {}
    for i = 1, n do
        toks[i] = { kinds[i], texts[i] }
    end
    return toks
end

-- Parser ------------------------------------------------------------------------
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

local function gen_call(node, cx)
    local f, args = node.f, {}
    for i = 1, #node.args do
        args[i] = gen(node.args[i], cx)
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

local function gen_binary(node, cx)
    local op, l, r = node.op, gen(node.l, cx), gen(node.r, cx)
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

-- cx: the compile's { n = nodes generated (each pays one step per
-- evaluation), b = the budget it goes on }
gen = function(node, cx)
    cx.n = cx.n + 1
    cx.b:step()
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
        local o, desc, kn = gen(node.o, cx), node.o.desc, node.key
        if kn.k == "const" then
            -- a.b: the key inlined (still counted as a node)
            cx.n = cx.n + 1
            local kv = kn.v
            return function()
                local t = o()
                if type(t) == "table" then
                    return rawget(t, kv)
                end
                return index(t, kv, desc)
            end
        end
        local key = gen(kn, cx)
        return function()
            local t = o()
            if type(t) == "table" then
                return rawget(t, key())
            end
            return index(t, key(), desc)
        end
    elseif k == "var" then
        local key = gen(node.key, cx)
        return function() return ngx_var(key()) end
    elseif k == "ctx" then
        return request_ctx
    elseif k == "paren" then
        local e = gen(node.e, cx)
        return function() return (e()) end
    elseif k == "call" then
        return gen_call(node, cx)
    elseif k == "unary" then
        local e = gen(node.e, cx)
        if node.op == "not" then
            return function() return not e() end
        elseif node.op == "-" then
            return function() return unm(e()) end
        end
        return function() return len(e()) end
    end
    return gen_binary(node, cx)
end

-- nil, reason when expr is not allowed; true otherwise.
local function check(src)
    local ok, err = pcall(parse, src, NO_BUDGET)
    if not ok then
        return nil, type(err) == "table" and err.msg or tostring(err)
    end
    return true
end
_M.check = check

-- A compiled expression: fn() gives its value (raises on a type error or
-- when the hit's budget is spent: the caller runs it under pcall). b: a
-- budget (budget.lua), every token and node a step of it, so 1,000 bytes
-- (~0.5 ms interpreted, 1+ ms on a loaded machine) are compiled in slices;
-- nil where the caller cannot yield.
function _M.compile(src, b)
    b = b or NO_BUDGET
    local ok, node = pcall(parse, src, b)
    if not ok then
        return nil, type(node) == "table" and node.msg or tostring(node)
    end
    local cx = { n = 0, b = b }
    local root = gen(node, cx)
    local nodes = cx.n
    return function()
        charge(nodes)
        return (root())
    end
end

-- A logpoint template: "n={n} user={ctx.user}" -> list of strings and fns.
-- b: as for compile.
function _M.compile_template(tpl, b)
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
        local fn, err = _M.compile(str_sub(tpl, s + 1, e - 1), b)
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

-- Compiling runs interpreted: a breakpoint is set once, and tracing the
-- compiler's loops and recursion cold took up to ~10 ms (a 32-expression
-- template: 0.5 ms interpreted) holding the worker. Only the compiler: the
-- closures it makes (the evaluation) are left as they were.
for _, fn in ipairs({ tokenize, _M.tokenize, no_step, fail, near, syntax, is_op, expect,
                      const, resolve, call_args, primary, simple, expr, check_tokens, parse,
                      gen, gen_call, gen_compare, gen_binary, check, _M.compile,
                      _M.compile_template }) do
    jit_off(fn)
end

return _M
