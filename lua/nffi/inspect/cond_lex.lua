-- The tokenizer of conditions and log templates (cond.lua): source bytes to
-- token arrays, every token a step of the budget it is given. Lexical errors
-- come back as nil, reason; what a token may not be (a keyword, `=`, `{`...)
-- is the parser's check (cond_parse.lua).
local str_sub = string.sub
local str_byte = string.byte
local str_char = string.char
local str_find = string.find
local str_match = string.match
local jit_off = jit.off

local _M = { _VERSION = "0.1.0" }

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
-- string or op) and texts[i], and their count; check_tokens (cond_parse.lua)
-- makes values[i] for the literals. Returns nil, reason on a lexical error. A
-- token is found with a byte test and at most a pattern call or two (names,
-- blanks, numbers and the plain bytes of a string are each taken in one):
-- 1,000 bytes in ~0.1 ms, interpreted.
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
_M.tokenize = tokenize

-- Interpreted, as the whole compiler (see the end of cond.lua).
jit_off(tokenize)

return _M
