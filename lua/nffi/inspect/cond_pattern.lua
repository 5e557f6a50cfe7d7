-- Lua patterns for conditions and log templates (cond.lua), bounded: on a
-- port of LuaJIT's matcher (lib_string.c) that spends the hit's budget, one
-- step per pattern item tried and per character tested, so a backtracking
-- pattern over a long string stops when the budget is gone instead of holding
-- the worker. string.find/match/gsub semantics, with two differences: a gsub
-- replacement table is read raw (no __index) and a function replacement is
-- refused. Plain searches (a pattern with no magic characters, or find's
-- plain flag) use the C search, charged by the bytes it may compare.
-- The matcher itself is cond_match.lua; here are the string functions on it.
local matcher = require "nffi.inspect.cond_match"

local str_byte = string.byte
local str_char = string.char
local str_sub = string.sub
local str_find = string.find
local str_format = string.format
local tbl_concat = table.concat
local type = type
local error = error
local rawget = rawget
local tostring = tostring
local math_floor = math.floor
local do_match, get_capture, captures = matcher.do_match, matcher.get_capture, matcher.captures
local new_state, settle = matcher.new_state, matcher.settle

local _M = { _VERSION = "0.1.0" }

local L_ESC = matcher.L_ESC  -- %
local SPECIALS = "[%^%$%*%+%?%.%(%[%%%-]"  -- what makes a find not plain (as LuaJIT)
local NOT_LEAD = "[%^%$%*%+%?%.%(%)%[%]%%%-]"
local BYTES_PER_STEP = matcher.BYTES_PER_STEP  -- a plain C scan or copy of this many bytes

-- The hit's budget (cond_meter.lua), shared with the matcher: plain searches
-- are charged here, straight on the meter.
local meter, check

function _M.set_meter(m, on_check)
    meter, check = m, on_check
    matcher.set_meter(m, on_check)
end

local function check_string(v, n, fname)
    local t = type(v)
    if t == "number" then
        return tostring(v)  -- a number: LuaJIT formats it, no metamethod
    elseif t ~= "string" then
        error(str_format("bad argument #%d to '%s' (string expected, got %s)", n, fname,
                         t == "nil" and "no value" or t), 0)
    end
    return v
end

-- The first position at or after s1 where a match may start: a pattern whose
-- first item is one literal character jumps there with the C search.
local function first_char(pat, p)
    local c = str_byte(pat, p)
    if not c or str_find(str_char(c), NOT_LEAD) then
        return nil
    end
    local q = str_byte(pat, p + 1)
    if q == 42 or q == 63 or q == 45 then  -- * ? - may match nothing
        return nil
    end
    return str_char(c)
end

local function posrelat(pos, len)
    if pos < 0 then
        return len + pos + 1
    end
    return pos
end

local function find_aux(find, s, pat, init, plain)
    local fname = find and "find" or "match"
    s = check_string(s, 1, fname)
    pat = check_string(pat, 2, fname)
    local slen = #s
    if init == nil then
        init = 1
    elseif type(init) ~= "number" then
        error("bad argument #3 to '" .. fname .. "' (number expected, got " .. type(init) .. ")",
              0)
    end
    init = posrelat(math_floor(init), slen)
    if init < 1 then
        init = 1
    elseif init > slen + 1 then
        init = slen + 1
    end
    if find and (plain or not str_find(pat, SPECIALS)) then
        local cost = math_floor((slen - init + 1) * (#pat + 1) / (BYTES_PER_STEP * 8))
        local left = meter.left - 1 - cost
        meter.left = left
        check()
        return str_find(s, pat, init, true)
    end
    local p = 1
    local anchor = str_byte(pat, 1) == 94
    if anchor then
        p = 2
    end
    local ms = new_state(s, pat)
    local lead = not anchor and first_char(pat, p)
    local s1 = init
    while true do
        if lead then
            local at = str_find(s, lead, s1, true)
            ms.left = ms.left - math_floor(((at or slen + 1) - s1) / BYTES_PER_STEP)
            if not at then
                break
            end
            s1 = at
        end
        ms.level = 0
        local e = do_match(ms, s1, p)
        if e then
            ms.left = ms.left - ms.level
            settle(ms)
            if find then
                return s1, e - 1, captures(ms, s1, e, false)
            end
            return captures(ms, s1, e, true)
        end
        s1 = s1 + 1
        if anchor or s1 > slen + 1 then
            break
        end
    end
    settle(ms)
    return nil
end

function _M.find(s, pat, init, plain)
    return find_aux(true, s, pat, init, plain)
end

function _M.match(s, pat, init)
    return find_aux(false, s, pat, init, false)
end

-- out: the pieces of the result, n their count, size their total length;
-- max_len: the longest string a condition may make.
local function add_piece(st, piece)
    local ms = st.ms
    ms.left = ms.left - 2  -- the piece, and the work that made it
    local n = st.n + 1
    st.n = n
    st.out[n] = piece
    local size = st.size + #piece
    st.size = size
    if size > st.max then
        error("string longer than " .. st.max .. " bytes", 0)
    end
end

local function add_value(ms, st, s, e, repl, rt)
    if rt == "string" then
        local i, rl = 1, #repl
        while i <= rl do
            local c = str_byte(repl, i)
            if c == L_ESC then
                i = i + 1
                local d = str_byte(repl, i)
                if d and d >= 48 and d <= 57 then
                    local v = get_capture(ms, d - 48, s, e)
                    add_piece(st, type(v) == "number" and tostring(v) or v)
                elseif d then
                    add_piece(st, str_char(d))
                end
                i = i + 1
            else
                local j = str_find(repl, "%", i, true) or rl + 1
                add_piece(st, str_sub(repl, i, j - 1))
                i = j
            end
        end
        return
    end
    -- a table, read raw: the key is the first capture or the whole match
    ms.left = ms.left - 1
    local key = get_capture(ms, 1, s, e)
    local v = rawget(repl, key)
    local vt = type(v)
    if not v then  -- (never == on a value of the program: a cdata's __eq would run)
        add_piece(st, str_sub(ms.src, s, e - 1))
    elseif vt == "string" then
        add_piece(st, v)
    elseif vt == "number" then
        add_piece(st, tostring(v))
    else
        error("invalid replacement value (a " .. vt .. ")", 0)
    end
end

-- max_len: the longest result allowed.
function _M.gsub(s, pat, repl, max_n, max_len)
    s = check_string(s, 1, "gsub")
    pat = check_string(pat, 2, "gsub")
    local rt = type(repl)
    if rt == "number" then
        repl, rt = tostring(repl), "string"
    elseif rt == "function" then
        error("gsub with a function replacement is not allowed in a condition", 0)
    elseif rt ~= "string" and rt ~= "table" then
        error("bad argument #3 to 'gsub' (string/table expected, got " .. rt .. ")", 0)
    end
    local slen = #s
    if max_n == nil then
        max_n = slen + 1
    elseif type(max_n) ~= "number" then
        error("bad argument #4 to 'gsub' (number expected, got " .. type(max_n) .. ")", 0)
    end
    local p = 1
    local anchor = str_byte(pat, 1) == 94
    if anchor then
        p = 2
    end
    local ms = new_state(s, pat)
    local st = { out = {}, n = 0, size = 0, max = max_len, ms = ms }
    local src, keep, n = 1, 1, 0  -- keep: where the text not yet added starts
    while n < max_n do
        ms.level = 0
        local e = do_match(ms, src, p)
        if e then
            n = n + 1
            if src > keep then
                add_piece(st, str_sub(s, keep, src - 1))
            end
            add_value(ms, st, src, e, repl, rt)
            keep = e
        end
        if e and e > src then
            src = e
        elseif src <= slen then
            src = src + 1
        else
            break
        end
        if anchor then
            break
        end
    end
    if keep <= slen then
        if st.size + slen - keep + 1 > max_len then
            error("string longer than " .. max_len .. " bytes", 0)  -- before the copy
        end
        add_piece(st, str_sub(s, keep))
    end
    ms.left = ms.left - math_floor(st.size / BYTES_PER_STEP)
    settle(ms)
    return tbl_concat(st.out, "", 1, st.n), n
end

return _M
