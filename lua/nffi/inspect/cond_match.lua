-- The bounded matcher behind cond_pattern.lua: a port of LuaJIT's match
-- (lib_string.c) that spends the hit's budget, one step per pattern item
-- tried and per character tested, so a backtracking pattern over a long
-- string stops when the budget is gone instead of holding the worker. A
-- match state (new_state) counts its own steps and hands them to the meter.
local str_byte = string.byte
local str_char = string.char
local str_sub = string.sub
local str_find = string.find
local ipairs = ipairs
local unpack = unpack
local error = error
local math_floor = math.floor

local _M = { _VERSION = "0.1.0" }

local L_ESC = 37            -- %
local MAXCAPTURES = 32
local MAXDEPTH = 200        -- LuaJIT's MAXCCALLS: "pattern too complex"
local CAP_UNFINISHED = -1
local CAP_POSITION = -2
local BYTES_PER_STEP = 32   -- a plain C scan or copy of this many bytes: one step
_M.L_ESC, _M.BYTES_PER_STEP = L_ESC, BYTES_PER_STEP

-- The hit's budget (cond_meter.lua's meter): { left = steps, next_check = a
-- lower mark }; check() looks at meter.left (raises once it is below 0) and
-- at the CPU clock, and sets the next mark. A match counts in its own state
-- (ms.left) and hands it over at each mark and when it ends.
local meter, check

function _M.set_meter(m, on_check)
    meter, check = m, on_check
end

local function tick(ms)
    meter.left = ms.left
    check()
    ms.mark = meter.next_check
end

-- Character classes exactly as LuaJIT's C matcher sees them, learned from it
-- once (letters that are no class match themselves there and here).
local classes = {}
for _, cl in ipairs({ "a", "c", "d", "g", "l", "p", "s", "u", "w", "x", "z" }) do
    local lower, upper = {}, {}
    for c = 0, 255 do
        local m = str_find(str_char(c), "^%" .. cl) ~= nil
        lower[c] = m
        upper[c] = not m
    end
    classes[str_byte(cl)] = lower
    classes[str_byte(cl) - 32] = upper
end

local function match_class(c, cl)
    local t = classes[cl]
    if t then
        return t[c]
    end
    return cl == c
end

local function class_end(ms, p)
    local pat, plen = ms.pat, ms.plen
    local c = str_byte(pat, p)
    p = p + 1
    if c == L_ESC then
        if p > plen then
            error("malformed pattern (ends with '%')", 0)
        end
        return p + 1
    elseif c == 91 then  -- [
        if str_byte(pat, p) == 94 then  -- ^
            p = p + 1
        end
        repeat  -- look for a ]
            if p > plen then
                error("malformed pattern (missing ']')", 0)
            end
            local cc = str_byte(pat, p)
            p = p + 1
            if cc == L_ESC and p <= plen then
                p = p + 1  -- skip escapes (e.g. %])
            end
        until str_byte(pat, p) == 93
        return p + 1
    end
    return p
end

-- p at the [, ec at the ]
local function match_bracket(ms, c, p, ec)
    local pat = ms.pat
    local sig = true
    if str_byte(pat, p + 1) == 94 then
        sig = false
        p = p + 1
    end
    ms.left = ms.left - math_floor((ec - p) / 4)
    p = p + 1
    while p < ec do
        local pc = str_byte(pat, p)
        if pc == L_ESC then
            p = p + 1
            if match_class(c, str_byte(pat, p)) then
                return sig
            end
        elseif str_byte(pat, p + 1) == 45 and p + 2 < ec then  -- a-z
            if pc <= c and c <= str_byte(pat, p + 2) then
                return sig
            end
            p = p + 2
        elseif pc == c then
            return sig
        end
        p = p + 1
    end
    return not sig
end

-- Whether the character at s matches the item p..ep-1 (false past the end).
local function single_match(ms, s, p, ep)
    local left = ms.left - 1
    ms.left = left
    if left < ms.mark then
        tick(ms)
    end
    if s > ms.slen then
        return false
    end
    local c = str_byte(ms.src, s)
    local pc = str_byte(ms.pat, p)
    if pc == 46 then  -- .
        return true
    elseif pc == L_ESC then
        return match_class(c, str_byte(ms.pat, p + 1))
    elseif pc == 91 then
        return match_bracket(ms, c, p, ep - 1)
    end
    return pc == c
end

local do_match

local function max_expand(ms, s, p, ep)
    local i = 0
    while single_match(ms, s + i, p, ep) do
        i = i + 1
    end
    while i >= 0 do
        local res = do_match(ms, s + i, ep + 1)
        if res then
            return res
        end
        i = i - 1
    end
    return nil
end

local function min_expand(ms, s, p, ep)
    while true do
        local res = do_match(ms, s, ep + 1)
        if res then
            return res
        elseif single_match(ms, s, p, ep) then
            s = s + 1
        else
            return nil
        end
    end
end

local function start_capture(ms, s, p, what)
    local level = ms.level + 1
    if level > MAXCAPTURES then
        error("too many captures", 0)
    end
    ms.init[level] = s
    ms.len[level] = what
    ms.level = level
    local res = do_match(ms, s, p)
    if not res then
        ms.level = ms.level - 1
    end
    return res
end

local function end_capture(ms, s, p)
    local l
    for i = ms.level, 1, -1 do
        if ms.len[i] == CAP_UNFINISHED then
            l = i
            break
        end
    end
    if not l then
        error("invalid pattern capture", 0)
    end
    ms.len[l] = s - ms.init[l]
    local res = do_match(ms, s, p)
    if not res then
        ms.len[l] = CAP_UNFINISHED
    end
    return res
end

local function match_capture(ms, s, c)
    local l = c - 48  -- '1' is capture 1
    if l < 1 or l > ms.level or ms.len[l] == CAP_UNFINISHED then
        error("invalid capture index", 0)
    end
    local len = ms.len[l]
    if len == CAP_POSITION then
        return nil  -- LuaJIT compares a length of (size_t)-2: never matches
    end
    ms.left = ms.left - math_floor(len / BYTES_PER_STEP)
    if ms.slen - s + 1 >= len then
        local init = ms.init[l]
        if str_sub(ms.src, init, init + len - 1) == str_sub(ms.src, s, s + len - 1) then
            return s + len
        end
    end
    return nil
end

local function match_balance(ms, s, p)
    if p + 1 > ms.plen then
        error("unbalanced pattern", 0)
    end
    local src, slen = ms.src, ms.slen
    local b, e = str_byte(ms.pat, p), str_byte(ms.pat, p + 1)
    if s > slen or str_byte(src, s) ~= b then
        return nil
    end
    local cont = 1
    s = s + 1
    while s <= slen do
        local left = ms.left - 1
        ms.left = left
        if left < ms.mark then
            tick(ms)
        end
        local c = str_byte(src, s)
        if c == e then
            cont = cont - 1
            if cont == 0 then
                return s + 1
            end
        elseif c == b then
            cont = cont + 1
        end
        s = s + 1
    end
    return nil
end

-- The end (one past) of a match of pattern p.. at s, or nil.
do_match = function(ms, s, p)
    local depth = ms.depth + 1
    if depth > MAXDEPTH then
        error("pattern too complex", 0)
    end
    ms.depth = depth
    local pat, plen = ms.pat, ms.plen
    local res
    while true do
        -- a step of this loop costs about two of single_match
        local left = ms.left - 2
        ms.left = left
        if left < ms.mark then
            tick(ms)
        end
        if p > plen then
            res = s
            break
        end
        local pc = str_byte(pat, p)
        if pc == 40 then  -- (
            if str_byte(pat, p + 1) == 41 then
                res = start_capture(ms, s, p + 2, CAP_POSITION)
            else
                res = start_capture(ms, s, p + 1, CAP_UNFINISHED)
            end
            break
        elseif pc == 41 then  -- )
            res = end_capture(ms, s, p + 1)
            break
        end
        local dflt = true
        if pc == L_ESC then
            local nc = str_byte(pat, p + 1)
            if nc == 98 then  -- %b
                s = match_balance(ms, s, p + 2)
                if not s then
                    break
                end
                p = p + 4
                dflt = false
            elseif nc == 102 then  -- %f
                p = p + 2
                if str_byte(pat, p) ~= 91 then
                    error("missing '[' after '%f' in pattern", 0)
                end
                local ep = class_end(ms, p)
                ms.left = ms.left - 6  -- the class read and tested twice
                local prev = s == 1 and 0 or str_byte(ms.src, s - 1)
                local cur = s <= ms.slen and str_byte(ms.src, s) or 0
                if match_bracket(ms, prev, p, ep - 1) or not match_bracket(ms, cur, p, ep - 1) then
                    break
                end
                p = ep
                dflt = false
            elseif nc and nc >= 48 and nc <= 57 then  -- %1 .. %9
                s = match_capture(ms, s, nc)
                if not s then
                    break
                end
                p = p + 2
                dflt = false
            end
        elseif pc == 36 and p == plen then  -- $ at the end
            if s == ms.slen + 1 then
                res = s
            end
            break
        end
        if dflt then
            local ep = class_end(ms, p)
            local m = single_match(ms, s, p, ep)
            local q = str_byte(pat, ep)
            if q == 63 then  -- ?
                if m then
                    res = do_match(ms, s + 1, ep + 1)
                    if res then
                        break
                    end
                end
                p = ep + 1
            elseif q == 42 then  -- *
                res = max_expand(ms, s, p, ep)
                break
            elseif q == 43 then  -- +
                if m then
                    res = max_expand(ms, s + 1, p, ep)
                end
                break
            elseif q == 45 then  -- -
                res = min_expand(ms, s, p, ep)
                break
            else
                if not m then
                    break
                end
                s = s + 1
                p = ep
            end
        end
    end
    ms.depth = depth - 1
    return res
end

-- Capture i (1-based; 0 or past the last with no captures: the whole match).
local function get_capture(ms, i, s, e)
    if i > ms.level then
        if i == 1 or i == 0 then
            return str_sub(ms.src, s, e - 1)
        end
        error("invalid capture index", 0)
    end
    if i == 0 then
        return str_sub(ms.src, s, e - 1)
    end
    local l = ms.len[i]
    if l == CAP_UNFINISHED then
        error("unfinished capture", 0)
    elseif l == CAP_POSITION then
        return ms.init[i]
    end
    return str_sub(ms.src, ms.init[i], ms.init[i] + l - 1)
end

local function captures(ms, s, e, whole)
    local n = ms.level
    if n == 0 then
        if whole then
            return str_sub(ms.src, s, e - 1)
        end
        return
    end
    local out = {}
    for i = 1, n do
        out[i] = get_capture(ms, i, s, e)
    end
    return unpack(out, 1, n)
end
_M.do_match = do_match
_M.get_capture = get_capture
_M.captures = captures

local function new_state(src, pat)
    -- the steps spent are taken from the meter once, when the call ends
    return { src = src, slen = #src, pat = pat, plen = #pat, level = 0, depth = 0,
             init = {}, len = {}, left = meter.left, mark = meter.next_check }
end

local function settle(ms)
    meter.left = ms.left
    check()
end
_M.new_state = new_state
_M.settle = settle

return _M
