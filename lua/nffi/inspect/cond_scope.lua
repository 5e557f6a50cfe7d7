-- What a breakpoint line can see, so that a condition or log template
-- (cond.lua) naming something else is refused when the breakpoint arms
-- instead of failing at its first hit in every worker (issue 14).
-- A condition reads the hit frame's locals, then its upvalues (cond_gen.lua);
-- the built-ins (ngx.var, ngx.ctx, string, math, type...) are never names
-- of the frame and globals are never read. So a name is visible at LINE when
-- it is a local live at an instruction of LINE in a prototype that runs LINE,
-- or an upvalue of that prototype. (A hit reads the frame where a line event
-- comes: where LINE starts, and where a loop jumps back inside it; any of
-- LINE's instructions is taken, so nothing a hit can see is refused. A local
-- declared on LINE is live only after it, on the next line's instructions.)
-- Upvalue names come from jit.util.funcuvname. Locals by instruction are not
-- exposed by LuaJIT (debug.getlocal of a function gives its parameters): they
-- are read from the prototype's own debug info (varinfo, lineinfo) through
-- the FFI. Nothing is taken from LuaJIT's headers on trust: the layout is
-- measured once on a closure and prototype of this module (as the C hook's
-- calibration does, native/src/hook_layout.c), and every prototype read is
-- first checked field by field against jit.util.funcinfo, its debug arrays
-- against its own allocation. Where any of that fails (another layout,
-- bytecode loaded stripped) the scope is unknown and nothing is refused.
local ffi = require "ffi"
local jutil = require "jit.util"
local native = require "nffi.native"

local type = type
local next = next
local pcall = pcall
local rawget = rawget
local tonumber = tonumber
local str_byte = string.byte
local str_sub = string.sub
local tbl_sort = table.sort
local tbl_concat = table.concat
local math_min = math.min
local funcinfo = jutil.funcinfo
local funck = jutil.funck
local funcuvname = jutil.funcuvname
local ffi_cast = ffi.cast
local ffi_sizeof = ffi.sizeof
local ptr_of = native.ptr_of
local jit_off = jit.off

local _M = { _VERSION = "0.1.0" }

-- LuaJIT 2.1's GCproto, with 64-bit references (GC64) and with 32-bit ones.
ffi.cdef [[
typedef struct {
    uint64_t nextgc; uint8_t marked, gct, numparams, framesize; uint32_t sizebc;
    uint32_t unused_gc64;
    uint64_t gclist, k, uv; uint32_t sizekgc, sizekn, sizept; uint8_t sizeuv, flags;
    uint16_t trace;
    uint64_t chunkname; int32_t firstline, numline; uint64_t lineinfo, uvinfo, varinfo;
} nffi_scope_proto64;
typedef struct {
    uint32_t nextgc; uint8_t marked, gct, numparams, framesize; uint32_t sizebc;
    uint32_t gclist, k, uv; uint32_t sizekgc, sizekn, sizept; uint8_t sizeuv, flags;
    uint16_t trace;
    uint32_t chunkname; int32_t firstline, numline; uint32_t lineinfo, uvinfo, varinfo;
} nffi_scope_proto32;
]]

-- A closure's pc field (its first instruction, right after the prototype):
-- offset and size, per layout (GCfuncL).
local LAYOUTS = {
    { ct = ffi.typeof("const nffi_scope_proto64 *"), size = ffi_sizeof("nffi_scope_proto64"),
      pc_at = 32, pc_ct = ffi.typeof("const uint64_t *") },
    { ct = ffi.typeof("const nffi_scope_proto32 *"), size = ffi_sizeof("nffi_scope_proto32"),
      pc_at = 16, pc_ct = ffi.typeof("const uint32_t *") },
}
local u8p = ffi.typeof("const uint8_t *")
local u16p = ffi.typeof("const uint16_t *")
local u32p = ffi.typeof("const uint32_t *")
local cp = ffi.typeof("const char *")

local layout                -- nil: not measured; false: unknown; else one of LAYOUTS

local function addr(p)
    return tonumber(ffi_cast("uintptr_t", p))
end

-- The prototype at address a as layout l, when every field jit.util shows
-- agrees with it (info: funcinfo of the function or prototype); else nil.
local function proto_at(l, a, info)
    local pt = ffi_cast(l.ct, a)
    if pt.numparams ~= info.params or pt.framesize ~= info.stackslots
       or pt.sizebc ~= info.bytecodes or pt.sizeuv ~= info.upvalues
       or pt.firstline ~= info.linedefined
       or pt.numline ~= info.lastlinedefined - info.linedefined
       or pt.sizept < l.size + 4 * pt.sizebc then
        return nil
    end
    return pt
end

local function make_probe()
    return function(a) local b = a return b end
end

local function measure()
    local fn, proto = make_probe(), funck(make_probe, -1)
    local pf, pp = ptr_of(fn), type(proto) == "proto" and ptr_of(proto)
    if not pf or not pp then
        return false
    end
    local info = funcinfo(proto)
    for i = 1, #LAYOUTS do
        local l = LAYOUTS[i]
        local pc = tonumber(ffi_cast(l.pc_ct, ffi_cast(cp, pf) + l.pc_at)[0])
        if pc == addr(pp) + l.size and proto_at(l, addr(pp), info) then
            return l
        end
    end
    return false
end

-- The checked prototype of o (a Lua function or a prototype), or nil.
local function proto_of(o)
    if layout == nil then
        local ok, l = pcall(measure)
        layout = ok and l or false
    end
    if not layout then
        return nil
    end
    local info = funcinfo(o)
    if not info.source then
        return nil  -- a C function
    end
    local p = ptr_of(o)
    if not p then
        return nil
    end
    local a = addr(p)
    if type(o) == "function" then
        a = tonumber(ffi_cast(layout.pc_ct, ffi_cast(cp, p) + layout.pc_at)[0]) - layout.size
    end
    return proto_at(layout, a, info), a
end

-- An array of the prototype at a (n bytes each from ref), when it lies inside
-- the prototype's own allocation; else nil.
local function inside(pt, a, ref, n)
    local at = tonumber(ref)
    if not at or at <= a or at + n > a + pt.sizept then
        return nil
    end
    return at
end

-- The line of each instruction 1..sizebc-1 (lj_debug_line): { [pc] = line }.
local function lines_by_pc(pt, a, b)
    local n, first = pt.sizebc, pt.firstline
    local w = pt.numline < 256 and 1 or pt.numline < 65536 and 2 or 4
    local at = inside(pt, a, pt.lineinfo, w * n)
    if not at then
        return nil
    end
    local li = ffi_cast(w == 1 and u8p or w == 2 and u16p or u32p, at)
    local out = {}
    for pc = 1, n - 1 do
        out[pc] = first + li[pc - 1]
        if b then
            b:step()
        end
    end
    return out
end

local function uleb(p, i)
    local v = p[i]
    i = i + 1
    if v >= 0x80 then
        v = v - 0x80
        local sh = 7
        while true do
            local c = p[i]
            i = i + 1
            v = v + (c % 0x80) * 2 ^ sh
            sh = sh + 7
            if c < 0x80 then
                break
            end
        end
    end
    return v, i
end

-- The named locals of the prototype (lj_debug.c, debug_varname's format):
-- { {name, startpc, endpc}, ... }; the VM's own "(for index)" kind are left
-- out. nil when the prototype has no varinfo (stripped) or it does not fit.
local function locals_of(pt, a, b)
    local at = inside(pt, a, pt.varinfo, 1)
    if not at then
        return nil
    end
    local lim = a + pt.sizept - at  -- bytes readable from at
    local p = ffi_cast(u8p, at)
    local out, i, lastpc = {}, 0, 0
    while i < lim do
        local vn = p[i]
        local name
        if vn == 0 then
            return out
        elseif vn < 7 then
            i = i + 1
        else
            local s = i
            while i < lim and p[i] ~= 0 do
                i = i + 1
            end
            name = ffi.string(p + s, i - s)
            i = i + 1
        end
        if i + 2 > lim then
            return nil
        end
        local d1, d2
        d1, i = uleb(p, i)
        d2, i = uleb(p, i)
        lastpc = lastpc + d1
        if name then
            out[#out + 1] = { name, lastpc, lastpc + d2 }
        end
        if b then
            b:step()
        end
    end
    return nil
end

-- What LINE can see in the prototypes objs: { set = { [name] = "local" |
-- "upvalue" }, list = { name, ... }, declared = { [name] = true } (locals of
-- those functions, live at LINE or not) }; nil when it cannot be read here.
local function visible(objs, line, b)
    local set, list, declared = {}, {}, {}
    local function add(name, kind)
        if not set[name] then
            set[name] = kind
            list[#list + 1] = name
        end
    end
    for i = 1, #objs do
        local o = objs[i]
        local pt, a = proto_of(o)
        if not pt then
            return nil
        end
        local lines = lines_by_pc(pt, a, b)
        local vars = lines and locals_of(pt, a, b)
        if not vars then
            return nil
        end
        -- LINE's instructions
        local pcs = {}
        for pc = 1, pt.sizebc - 1 do
            if lines[pc] == line then
                pcs[#pcs + 1] = pc
            end
            if b then
                b:step()
            end
        end
        for j = 1, #vars do
            local v = vars[j]
            declared[v[1]] = true
            for k = 1, #pcs do
                if v[2] <= pcs[k] and pcs[k] < v[3] then
                    add(v[1], "local")
                    break
                end
            end
            if b then
                b:step()
            end
        end
        for j = 0, pt.sizeuv - 1 do
            local name = funcuvname(o, j)
            if name then
                add(name, "upvalue")
            end
        end
    end
    return { set = set, list = list, declared = declared }
end
_M.visible = visible

-- Levenshtein distance of a and b (both cut to 32 bytes); bud: a budget
-- (budget.lua) stepped once per row, or nil.
local function distance(a, b, bud)
    a, b = str_sub(a, 1, 32), str_sub(b, 1, 32)
    local n, m = #a, #b
    local prev, cur = {}, {}
    for j = 0, m do
        prev[j] = j
    end
    for i = 1, n do
        if bud then
            bud:step()
        end
        cur[0] = i
        local ca = str_byte(a, i)
        for j = 1, m do
            local cost = ca == str_byte(b, j) and 0 or 1
            cur[j] = math_min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
        end
        prev, cur = cur, prev
    end
    return prev[m]
end
_M.distance = distance

-- list sorted in place by score[name], then by name, and cut to max: the
-- nearest names first (here and finder.nearest).
local function ranked(list, score, max)
    tbl_sort(list, function(x, y)
        if score[x] ~= score[y] then
            return score[x] < score[y]
        end
        return x < y
    end)
    for i = #list, max + 1, -1 do
        list[i] = nil
    end
    return list
end
_M.ranked = ranked

-- names, nearest to target first (then by name), at most max.
local function nearest(target, names, max)
    local d, out = {}, {}
    for i = 1, #names do
        d[names[i]] = distance(target, names[i])
        out[i] = names[i]
    end
    return ranked(out, d, max), #names > max
end
_M.nearest = nearest

local REQUEST_READS = { ctx = "ngx.ctx", var = "ngx.var" }
local MAX_SHOWN = 8

-- The one line for an unknown name.
local function unknown(name, where, scope)
    local why = ""
    if scope.declared[name] then
        why = ": a local of this function that is not live there (assigned later)"
    elseif rawget(_G, name) ~= nil then
        why = ": a global, and conditions read only locals and upvalues"
    end
    local shown, more = nearest(name, scope.list, MAX_SHOWN)
    local vis = #shown > 0 and tbl_concat(shown, ", ") .. (more and ", ..." or "") or "none"
    local hint = REQUEST_READS[name] and "; did you mean " .. REQUEST_READS[name] .. "?" or ""
    return "unknown name '" .. name .. "' at " .. where .. why
           .. " (visible: " .. vis .. hint .. ")"
end

-- nil when every name the compiled condition (cond) and template (log) read
-- is visible at line in objs, or when what is visible cannot be read here;
-- else the message, labelled "condition: " or "log template: ". where: how
-- to name the line to the user (FILE:LINE).
function _M.check(cond_names, log_names, objs, line, where, b)
    if #cond_names == 0 and #log_names == 0 then
        return nil
    end
    local ok, scope = pcall(visible, objs, line, b)
    if not ok or not scope then
        return nil
    end
    for i = 1, #cond_names do
        if not scope.set[cond_names[i]] then
            return "condition: " .. unknown(cond_names[i], where, scope)
        end
    end
    for i = 1, #log_names do
        if not scope.set[log_names[i]] then
            return "log template: " .. unknown(log_names[i], where, scope)
        end
    end
    return nil
end

-- Interpreted: run once per arm, over code of every shape.
for _, fn in next, { proto_of, lines_by_pc, locals_of, visible, distance, ranked, nearest, unknown,
                     _M.check } do
    jit_off(fn)
end

return _M
