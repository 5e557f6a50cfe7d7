-- The compiler of conditions and log templates (cond.lua): a parsed tree
-- (cond_parse.lua) to a tree of closures, whose every operation is raw
-- (cond_lib.lua) and reads the current hit's variables (set_frame).
local lib = require "nffi.inspect.cond_lib"

local type = type
local select = select
local unpack = unpack
local rawequal = rawequal
local rawget = rawget
local ipairs = ipairs
local jit_off = jit.off
local eq, lt, le = lib.eq, lib.lt, lib.le
local arith, unm, concat, len, index = lib.arith, lib.unm, lib.concat, lib.len, lib.index
local ngx_var, request_ctx = lib.ngx_var, lib.request_ctx

local _M = { _VERSION = "0.1.0" }

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
-- evaluation), b = the budget it goes on, names = the frame variables read
-- (a list, and a set of the same names; optional) }
gen = function(node, cx)
    cx.n = cx.n + 1
    cx.b:step()
    local k = node.k
    if k == "const" then
        local v = node.v
        return function() return v end
    elseif k == "name" then
        local name = node.name
        -- the frame variables it reads, in order (cond_scope.lua checks them
        -- against the breakpoint line when it arms)
        local names = cx.names
        if names and not names[name] then
            names[name] = true
            names[#names + 1] = name
        end
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
_M.gen = gen

-- Interpreted, as the whole compiler (see the end of cond.lua).
for _, fn in ipairs({ gen, gen_call, gen_compare, gen_binary }) do
    jit_off(fn)
end

return _M
