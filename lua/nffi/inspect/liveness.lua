-- Which locals of a suspended frame hold what the program last stored in
-- them. When a trace exits, LuaJIT writes back only the stack slots its
-- snapshot keeps: a slot the code does not read again before writing it (a
-- dead one) keeps whatever was there when the trace was entered (`i = 57` in
-- a loop at 2000, `err = 6.9e-310`). A slot that some path from the frame's
-- point reads before writing (a live one) was written back, or written since:
-- its value is the program's. So a local is shown only when it is live at
-- the point the frame waits at (its call); the others are "unavailable", as
-- gdb says <optimized out>.
-- The point is not exposed (debug.getinfo gives the line): it is every call
-- on the current line, and a local counts as live only when live at all of
-- them. Liveness is read from the bytecode (jit.util.funcbc), over every path
-- of the control flow, per function and point, cached (weak keys). A local
-- that a closure made in the function names is taken as live (the closure
-- may read it any time). Without jit.util / jit.vmdef nothing is judged (nil).
local ok_util, jutil = pcall(require, "jit.util")
local ok_vmdef, vmdef = pcall(require, "jit.vmdef")
local bit = require "bit"

local band, rshift = bit.band, bit.rshift
local str_sub = string.sub
local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }

local MAX_PCS = 20000           -- longer functions are not judged
local MAX_SLOTS = 250

local usable = ok_util and ok_vmdef and type(vmdef) == "table"
    and type(vmdef.bcnames) == "string" and type(jutil.funcbc) == "function"
local funcbc = usable and jutil.funcbc
local funcinfo = usable and jutil.funcinfo
local funck = usable and jutil.funck
local funcuvname = usable and jutil.funcuvname
local debug_getinfo = debug.getinfo

local function is_lua(fn)
    if type(fn) ~= "function" then
        return false
    end
    local info = debug_getinfo(fn, "S")
    return info ~= nil and info.what ~= "C"
end

local names_by_op = {}
if usable then
    local s = vmdef.bcnames
    for op = 0, #s / 6 - 1 do
        names_by_op[op] = (str_sub(s, op * 6 + 1, op * 6 + 6):gsub(" +$", ""))
    end
end

-- operand modes (lj_bc.h BCMode)
local M_DST, M_BASE, M_VAR, M_RBASE, M_JUMP = 1, 2, 3, 4, 13

local COMPARE = {}
for _, n in ipairs({ "ISLT", "ISGE", "ISLE", "ISGT", "ISEQV", "ISNEV", "ISEQS", "ISNES",
                     "ISEQN", "ISNEN", "ISEQP", "ISNEP", "IST", "ISF" }) do
    COMPARE[n] = true
end
local CALLS = { CALL = true, CALLM = true, ITERC = true, ITERN = true }
local RETS = { RET = true, RET0 = true, RET1 = true, RETM = true }
local TAILCALLS = { CALLT = true, CALLMT = true }
local FALLTHROUGH = { LOOP = true, ILOOP = true, JLOOP = true }
local JUMP_ONLY = { JMP = true, UCLO = true, ISNEXT = true }

local LOOPS = { FORL = true, ITERL = true, LOOP = true }
local COMPILED = { JFUNCF = true, JFUNCV = true, JFORL = true, JFORI = true, JITERL = true,
                   JLOOP = true }

local weak_k = { __mode = "k" }
local decoded = setmetatable({}, weak_k)   -- fn -> code, or false (not judged)
local judged = setmetatable({}, weak_k)    -- fn -> { [line] = { [slot] = live } }

-- One function's bytecode as arrays: op name, A, B, C, D, modes, line.
local function decode(fn, b)
    local code = { op = {}, a = {}, b = {}, c = {}, d = {}, ma = {}, mb = {}, mc = {},
                   line = {}, captured = {} }
    local n = 0
    for pc = 1, MAX_PCS + 1 do
        local ins, m = funcbc(fn, pc)
        if not ins then
            break
        end
        if pc > MAX_PCS then
            return false
        end
        n = pc
        local op = band(ins, 0xff)
        local d = rshift(ins, 16)
        local mb = band(rshift(m, 3), 15)
        code.op[pc] = names_by_op[op] or "?"
        code.a[pc] = band(rshift(ins, 8), 0xff)
        code.ma[pc], code.mb[pc], code.mc[pc] = band(m, 7), mb, band(rshift(m, 7), 15)
        if mb ~= 0 then
            code.b[pc], code.c[pc] = rshift(ins, 24), band(d, 0xff)
        else
            code.d[pc] = d
        end
        local fi = funcinfo(fn, pc)
        code.line[pc] = fi and fi.currentline
        if b then
            b:step()
        end
    end
    code.n = n
    -- where the JIT may patch this function: loops (FORL, ITERL, LOOP in
    -- all their variants), read afresh by compiled()
    local loops = {}
    for pc = 1, n do
        local name = code.op[pc]
        if LOOPS[str_sub(name, -4)] or LOOPS[str_sub(name, -5)] then
            loops[#loops + 1] = pc
        end
    end
    code.loops = loops
    -- names of the upvalues of the closures made here: locals they may read
    for k = 1, 1000 do
        local ok, proto = pcall(funck, fn, -k)
        if not ok or proto == nil then
            break
        end
        if type(proto) == "proto" then
            for u = 1, 256 do
                local name = funcuvname(proto, u - 1)
                if not name then
                    break
                end
                code.captured[name] = true
            end
        end
    end
    return code
end

-- The effect of instruction pc on slot s: "use", "def" or nil; edge: the
-- successor it goes to (ISTC/ISFC copy only on their jump edge).
local function effect(code, pc, s)
    local op, a = code.op[pc], code.a[pc]
    local ma, mb, mc = code.ma[pc], code.mb[pc], code.mc[pc]
    if mb == M_VAR and code.b[pc] == s then
        return "use"
    end
    if mc == M_VAR and (mb ~= 0 and code.c[pc] or code.d[pc]) == s then
        return "use"
    end
    if mc == M_RBASE and s >= code.b[pc] and s <= code.c[pc] then
        return "use"
    end
    if RETS[op] then
        local top = op == "RETM" and MAX_SLOTS or a + code.d[pc] - 1
        if s >= a and s < top then
            return "use"
        end
        return "def"   -- the frame ends: never read again
    end
    if TAILCALLS[op] then
        return s >= a and "use" or "def"
    end
    if ma == M_VAR and a == s then
        return "use"
    end
    if ma == M_DST and a == s and op ~= "ISTC" and op ~= "ISFC" then
        return "def"
    end
    if ma == M_BASE then
        if op == "ITERC" or op == "ITERN" then
            if s >= a - 3 then
                return s < a and "use" or "def"
            end
        elseif CALLS[op] then
            -- the callee and its arguments (and the frame link slot of GC64)
            local top = (op == "CALLM" or code.c[pc] == 0) and MAX_SLOTS or a + code.c[pc] + 1
            if s >= a then
                return s < top and "use" or "def"
            end
        elseif op == "KNIL" then
            if s >= a and s <= code.d[pc] then
                return "def"
            end
        elseif op == "VARG" then
            if s >= a and (code.b[pc] == 0 or s <= a + code.b[pc] - 2) then
                return "def"
            end
        elseif op == "TSETM" then
            if s >= a - 1 then
                return "use"
            end
        elseif s >= a then
            return "use"   -- FORI/FORL/ITERL and the like: their own slots
        end
    end
    return nil
end

local function successors(code, pc)
    local op, mc = code.op[pc], code.mc[pc]
    if RETS[op] or TAILCALLS[op] then
        return nil
    end
    if COMPARE[op] or op == "ISTC" or op == "ISFC" then
        return pc + 1, pc + 2
    end
    if mc == M_JUMP and not FALLTHROUGH[op] then
        local target = pc + code.d[pc] - 0x7fff
        if JUMP_ONLY[op] then
            return target
        end
        return pc + 1, target
    end
    return pc + 1
end

-- Whether some path from pc reads s before writing it.
local function live_from(code, start, s, b)
    local seen, stack, top = {}, { start }, 1
    while top > 0 do
        local pc = stack[top]
        stack[top] = nil
        top = top - 1
        if pc >= 1 and pc <= code.n and not seen[pc] then
            seen[pc] = true
            local e = effect(code, pc, s)
            if e == "use" then
                return true
            end
            if e ~= "def" then
                local n1, n2 = successors(code, pc)
                if n1 then
                    top = top + 1
                    stack[top] = n1
                end
                if n2 then
                    top = top + 1
                    stack[top] = n2
                end
            elseif code.op[pc] == "ISTC" or code.op[pc] == "ISFC" then
                top = top + 1
                stack[top] = pc + 2   -- the copy happens on the jump edge only
            end
            if b then
                b:step()
            end
        end
    end
    return false
end

-- fn's decoded bytecode, decoded once (false: too long to judge).
local function code_of(fn, b)
    local code = decoded[fn]
    if code == nil then
        code = decode(fn, b)
        decoded[fn] = code
    end
    return code
end

-- For a frame of fn suspended at a call on `line`: live[slot] (slot = local
-- index - 1) for the slots asked (slots: { [slot] = name }); nil when it
-- cannot be judged. b: a budget (may yield), or nil.
function _M.live_slots(fn, line, slots, b)
    if not usable or not line or line < 0 or not is_lua(fn) then
        return nil
    end
    local code = code_of(fn, b)
    if not code then
        return nil
    end
    local by_line = judged[fn]
    if not by_line then
        by_line = {}
        judged[fn] = by_line
    end
    local cache = by_line[line]
    if not cache then
        cache = {}
        by_line[line] = cache
    end
    local points = {}
    for pc = 1, code.n do
        if code.line[pc] == line and CALLS[code.op[pc]] then
            points[#points + 1] = pc
        end
    end
    if #points == 0 then
        return nil
    end
    local live = {}
    for s, name in pairs(slots) do
        local v = cache[s]
        if v == nil then
            v = true
            if not code.captured[name] then
                for i = 1, #points do
                    local pc = points[i]
                    -- the call's results (and everything above its base) are written
                    if s >= code.a[pc] or not live_from(code, pc + 1, s, b) then
                        v = false
                        break
                    end
                end
            end
            cache[s] = v
        end
        live[s] = v
    end
    return live
end

-- Whether a trace starts in fn now: its header or one of its loops is
-- patched into a J* instruction. A frame whose values a trace exit may have
-- left stale is one where this holds for it or for a frame below it (a trace
-- starts in one frame and restores the frames it inlined above it). Traces
-- flushed since a frame was restored are not seen.
function _M.compiled(fn, b)
    if not usable or not is_lua(fn) then
        return false
    end
    local code = code_of(fn, b)
    if not code then
        return true  -- too long to judge: take it as compiled
    end
    local head = funcbc(fn, 0)
    if head and COMPILED[names_by_op[band(head, 0xff)]] then
        return true
    end
    local loops = code.loops
    for i = 1, #loops do
        local ins = funcbc(fn, loops[i])
        if ins and COMPILED[names_by_op[band(ins, 0xff)]] then
            return true
        end
    end
    return false
end

_M.usable = usable

return _M
