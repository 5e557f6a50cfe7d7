-- Breakpoint conditions and logpoint templates: Lua expressions that read,
-- never call the program, write or run unbounded (DESIGN.md, Trust model).
-- Not run by Lua: tokenized and parsed (no assignment, function, table
-- constructor, method call or vararg; a call only to a built-in named by its
-- path), then compiled to a tree of closures whose every operation is raw
-- (cond_lib.lua: no metamethod of the program runs, no value of the program
-- is ever called) and paid from a per-hit budget: set_frame starts a hit with
-- a full one; past it evaluation raises and the breakpoint is removed.
-- Names resolve to the frame's locals, then its upvalues, else nil: globals
-- are never read. `ngx`, `string` and `math` are the built-ins' roots, never
-- a local of that name: ngx.var.NAME, ngx.var[expr] and ngx.ctx.KEY read the
-- current request; math.pi and math.huge are values; the rest are calls.
-- In parts: cond_lex.lua tokenizes, cond_parse.lua parses and refuses,
-- cond_gen.lua compiles the tree to closures; cond_lib.lua is what they may
-- do to a value (the raw operations, the built-ins, the per-hit meter).
local lib = require "nffi.inspect.cond_lib"
local lex = require "nffi.inspect.cond_lex"
local parser = require "nffi.inspect.cond_parse"
local compiler = require "nffi.inspect.cond_gen"

local type = type
local error = error
local setmetatable = setmetatable
local pcall = pcall
local tostring = tostring
local str_sub = string.sub
local str_find = string.find
local tbl_concat = table.concat
local charge = lib.charge
local ipairs = ipairs
local jit_off = jit.off
local safe_tostring = lib.tostring
local tokenize = lex.tokenize
local parse = parser.parse
local gen = compiler.gen

local _M = { _VERSION = "0.2.0" }

-- compiled expression or template -> { name, ... }: the frame variables
-- (locals, upvalues) it reads, in order of first appearance (weak: a
-- breakpoint's compiled parts go with it)
local names_of = setmetatable({}, { __mode = "k" })

local MAX_LEN = parser.MAX_LEN  -- bytes of one expression

-- Variables of the current hit (cond_gen.lua). NIL marks a nil local.
_M.NIL = compiler.NIL

-- What compiling steps when no budget is given: nothing.
local function no_step() end
local NO_BUDGET = { step = no_step, check = no_step }

-- A new hit (or the end of one): its variables and a full budget.
_M.set_frame = compiler.set_frame

_M.tostring = safe_tostring
_M.BUDGET = lib.BUDGET

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
    local cx = { n = 0, b = b, names = {} }
    local root = gen(node, cx)
    local nodes = cx.n
    local fn = function()
        charge(nodes)
        return (root())
    end
    local names = cx.names
    for i = 1, #names do
        names[names[i]] = nil  -- the list only
    end
    names_of[fn] = names
    return fn
end

-- The frame variables a compiled condition (compile) or template
-- (compile_template) reads: { name, ... }, each once, in order.
function _M.names(compiled)
    return names_of[compiled] or {}
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
    local names, seen = {}, {}
    for j = 1, #parts do
        local p = parts[j]
        if type(p) == "function" then
            local pn = names_of[p]
            for k = 1, #pn do
                if not seen[pn[k]] then
                    seen[pn[k]] = true
                    names[#names + 1] = pn[k]
                end
            end
        end
    end
    names_of[parts] = names
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
-- Each part turns off its own (cond_lex, cond_parse, cond_gen); these are the entry's.
for _, fn in ipairs({ _M.tokenize, no_step, check, _M.compile, _M.compile_template }) do
    jit_off(fn)
end

return _M
