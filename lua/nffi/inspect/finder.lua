-- Finds the code loaded in this worker, by chunk source: a sliced walk from
-- package.loaded, the registry (lua-nginx-module's code cache and coroutine
-- anchors), _G and the frames of the anchored coroutines, through tables and
-- function upvalues, then down each function's child prototypes
-- (jit.util.funck with negative indexes). Also resolves FILE to one source and
-- LINE to the next line that has code.
-- Every unit of the walk is one budget step: a table entry, an object, a
-- prototype, a constant scanned for child prototypes, a frame. The walk runs
-- interpreted (jit.off, at the end): its loops see tables, functions and
-- threads of every shape, so compiling them made ~100 traces a walk, up to ten
-- of them back to back between two reads of the clock (2-3.5 ms holding the
-- worker); interpreted the walk is faster (a 1,000-object worker: 2-5 ms of
-- CPU instead of 8-30) and no slice overruns its bound.
local coroutines = require "nffi.inspect.coroutines"
local distance = require("nffi.inspect.cond_scope").distance
local ranked = require("nffi.inspect.cond_scope").ranked
local jutil = require "jit.util"

local funcinfo = jutil.funcinfo
local funck = jutil.funck
local debug_getupvalue = debug.getupvalue
local debug_getinfo = debug.getinfo
local debug_getregistry = debug.getregistry
local jit_off = jit.off
local type = type
local setmetatable = setmetatable
local next = next
local pcall = pcall
local str_byte = string.byte
local str_sub = string.sub
local tbl_sort = table.sort
local math_min = math.min
local math_floor = math.floor
local math_max = math.max
local str_find = string.find
local ok_new, tbl_new = pcall(require, "table.new")
if not ok_new then
    tbl_new = function() return {} end
end

local _M = { _VERSION = "0.1.0" }

local MAX_OBJECTS = 300000
local MAX_KEYS = 20000     -- per table
local MAX_DEPTH = 10
local MAX_FRAMES = 100

local function name_of(src)
    if str_byte(src, 1) == 64 then  -- '@'
        return str_sub(src, 2)
    end
    return src
end
_M.name_of = name_of

-- Does FILE (url) name this chunk source? Without copying src: a chunk's
-- source can be its whole text, and every loaded source is asked each arm.
local function matches(url, src)
    if src == url then
        return true
    end
    local n, m = #url, #src
    local at = str_byte(src, 1) == 64  -- '@'
    if at and m - 1 == n then
        return str_sub(src, 2) == url
    end
    return m - (at and 1 or 0) > n and str_byte(src, -n - 1) == 47  -- '/'
           and str_sub(src, -n) == url
end
_M.matches = matches

local function proto_key(info)
    return info.linedefined .. ":" .. info.lastlinedefined .. ":" .. info.bytecodes
end

-- Adds fn (a function or a prototype) and its child prototypes to sources.
-- seen_keys: source -> { [proto_key] = true } (a chunk's source can be its
-- whole text: never copied into a key of its own).
local function add_code(sources, seen_keys, o, b)
    b:step()
    local info = funcinfo(o)
    local src = info.source
    if not src then
        return  -- a C function
    end
    local keys = seen_keys[src]
    if not keys then
        keys = {}
        seen_keys[src] = keys
    end
    local key = proto_key(info)
    if keys[key] then
        return
    end
    keys[key] = true
    local s = sources[src]
    if not s then
        s = { source = src, protos = {} }
        sources[src] = s
    end
    s.protos[#s.protos + 1] = { obj = o, linedefined = info.linedefined,
                                lastlinedefined = info.lastlinedefined,
                                bytecodes = info.bytecodes }
    if info.children then
        -- the GC constants: strings, templates and the child prototypes
        for i = 1, info.gcconsts or 100000 do
            local k = funck(o, -i)
            if k == nil then
                break
            end
            if type(k) == "proto" then
                add_code(sources, seen_keys, k, b)
            end
            b:step()
        end
    end
end
_M.add_code = add_code

-- How many objects the last walk met: the next walk's tables are made that
-- large at once. Growing them as it goes rehashes `seen` whole at each
-- doubling, in one piece: at 16,000 objects that was 2-5 ms holding the
-- worker (the first walk in a worker still grows them).
local last_objects = 0

-- source -> { source, protos = { {obj, linedefined, lastlinedefined, bytecodes} } }
function _M.collect(b)
    local sources, seen_keys = {}, {}
    local size = math_min(math_floor(last_objects * 1.25), MAX_OBJECTS)
    local seen = tbl_new(0, size)
    local queue, depths, qh, qt = tbl_new(size, 0), tbl_new(size, 0), 1, 0
    local function push(v, d)
        local t = type(v)
        if (t == "table" or t == "function" or t == "thread") and not seen[v] and d <= MAX_DEPTH
           and qt < MAX_OBJECTS then
            seen[v] = true
            qt = qt + 1
            queue[qt], depths[qt] = v, d
        end
    end
    push(package.loaded, 0)
    push(debug_getregistry(), 0)
    push(_G, 0)
    local list = coroutines.collect(b)
    if list then
        for i = 1, #list do
            push(list[i].co, 1)
        end
    end
    seen[sources] = true
    while qh <= qt do
        local v, d = queue[qh], depths[qh]
        queue[qh] = nil
        qh = qh + 1
        local t = type(v)
        if t == "table" then
            local n = 0
            local ok, k, val = pcall(next, v)
            while ok and k ~= nil and n < MAX_KEYS do
                n = n + 1
                push(k, d + 1)
                push(val, d + 1)
                b:step()
                ok, k, val = pcall(next, v, k)
            end
        elseif t == "function" then
            add_code(sources, seen_keys, v, b)
            for i = 1, 255 do
                local name, uv = debug_getupvalue(v, i)
                if not name then
                    break
                end
                push(uv, d + 1)
                b:step()
            end
        else
            for level = 0, MAX_FRAMES do
                local info = debug_getinfo(v, level, "f")
                if not info then
                    break
                end
                push(info.func, d + 1)
                b:step()
            end
        end
        b:step()
    end
    -- push outlives the walk when a trace holds it as a constant (or a trace
    -- event handler keeps it): its upvalue seen must not keep what the walk
    -- visited alive, coroutines included (queue is empty by now)
    seen = nil
    last_objects = qt
    return sources
end

-- Lines with code of one prototype: { [line] = true }, kept per prototype or
-- function for the next arm (weak: the code may be unloaded). A function's
-- come in one call (debug.getinfo "L"); a prototype's are read one bytecode at
-- a time (~1 us each: a 1,200-line chunk held the worker 3.5 ms in one piece),
-- stepping the budget b when there is one.
local lines_of = setmetatable({}, { __mode = "k" })

local function code_lines(p, b)
    local lines = lines_of[p.obj]
    if lines then
        return lines
    end
    if type(p.obj) == "function" then
        local info = debug_getinfo(p.obj, "L")
        lines = info and info.activelines
    end
    if not lines then
        lines = {}
        for pc = 1, p.bytecodes - 1 do
            local info = funcinfo(p.obj, pc)
            local l = info and info.currentline
            if l then
                lines[l] = true
            end
            if b then
                b:step()
            end
        end
    end
    lines_of[p.obj] = lines
    return lines
end

-- The first line >= line with code in p, below best (or any, best nil).
local function first_from(p, line, best, b)
    for l in next, code_lines(p, b) do
        if l >= line and (not best or l < best) then
            best = l
        end
    end
    return best
end

-- The first line >= line with code in s, and the prototypes it runs in. Only
-- the prototypes that may hold it are read (their code lies within
-- linedefined..lastlinedefined; a main chunk's, linedefined 0, anywhere):
-- those around the line and the main chunks first, then those starting
-- after it, nearest first, each only while it starts before the best so far.
-- b: a budget (the walk may yield), or nil where it must not (a chunk being
-- loaded).
function _M.resolve_line(s, line, b)
    local protos = s.protos
    local best
    for i = 1, #protos do
        local p = protos[i]
        if p.linedefined == 0 or (p.linedefined <= line and p.lastlinedefined >= line) then
            best = first_from(p, line, best, b)
        end
    end
    local near
    for i = 1, #protos do
        local p = protos[i]
        local ld = p.linedefined
        if ld > line and (not near or ld < near.linedefined) then
            near = p
        end
    end
    if near and (not best or near.linedefined < best) then
        best = first_from(near, line, best, b)
        for i = 1, #protos do
            local p = protos[i]
            if p.linedefined > line and (not best or p.linedefined < best) then
                best = first_from(p, line, best, b)
            end
        end
    end
    if not best then
        return nil
    end
    local objs = {}
    for i = 1, #protos do
        local p = protos[i]
        if (p.linedefined == 0 or (p.linedefined <= best and p.lastlinedefined >= best))
           and code_lines(p, b)[best] then
            objs[#objs + 1] = p.obj
        end
    end
    return best, objs
end

-- Is line inside a function of s that can still run (a reachable prototype
-- spanning it, or the chunk's main function while it is reachable)?
function _M.in_function(s, line)
    local protos = s.protos
    for i = 1, #protos do
        local p = protos[i]
        if p.linedefined == 0 or (p.linedefined <= line and p.lastlinedefined >= line) then
            return true
        end
    end
    return false
end

-- Sources named by url, sorted.
function _M.candidates(url, sources, b)
    local out = {}
    for src in next, sources do
        if matches(url, src) then
            out[#out + 1] = src
        end
        if b then
            b:step()
        end
    end
    tbl_sort(out)
    return out
end

local function base_of(name)
    local i = str_find(name, "/[^/]*$")
    return i and str_sub(name, i + 1) or name
end

-- For a FILE that matches no loaded chunk: the named chunks ('@file' and
-- '=name') nearest to it, at most max, nearest first: the same file name in
-- another directory, then file names a few edits away (about one in three
-- characters at most).
function _M.nearest(url, sources, max, b)
    local want = base_of(url)
    local limit = math_max(2, math_floor(#want / 3))
    local scored, score = {}, {}
    for src in next, sources do
        local c = str_byte(src, 1)
        if c == 64 or c == 61 then  -- '@', '='
            local name = name_of(src)
            local d = base_of(name) == want and 0 or distance(want, base_of(name), b)
            if d <= limit then
                scored[#scored + 1] = name
                score[name] = d
            end
        end
        if b then
            b:step()
        end
    end
    return ranked(scored, score, max)
end

-- Interpreted: see the top of this file (the walk's closures, push, too).
jit_off(_M.collect, true)
jit_off(add_code)
jit_off(_M.nearest)

return _M
