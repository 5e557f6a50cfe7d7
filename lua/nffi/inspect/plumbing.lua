-- Which frames are plumbing: C functions and chunks whose name matches one of
-- a list of globs a client sends (Lua.getCoroutines `skip`). A view that shows
-- one line per coroutine wants the first frame of application code, below
-- co_yield, lua-resty-core's ngx/semaphore.lua and nffi's own call path; asking
-- for that frame here sends one frame instead of the five above it.
--
-- The globs are data, never code: store/frames.ts defines them (its rule and
-- this one must agree, test/plumbing.test.ts holds both to the same cases):
--   `*` any characters but `/`, `**` anything, `**/` nothing or anything up to
--   a `/`, `?` one character but `/`, everything else itself;
--   a glob matches the whole chunk name (its leading @ or = dropped) from its
--   start or from just after any `/`.
-- Answers are kept per chunk name (a worker has a few hundred), so a walk of
-- 10,000 coroutines matches each name once.
local type = type
local str_byte = string.byte
local str_sub = string.sub
local str_find = string.find

local _M = { _VERSION = "0.1.0" }

local MAX_GLOBS = 32
local MAX_NAMES = 4096   -- answers kept per matcher before it starts over
local SLASH = str_byte("/")

-- A glob as tokens: { kind = "lit"|"one"|"star"|"any"|"anydir", text = ... }.
local function tokens_of(glob)
    local out, i, n = {}, 1, #glob
    local lit = nil
    local function flush()
        if lit then
            out[#out + 1] = { kind = "lit", text = lit }
            lit = nil
        end
    end
    while i <= n do
        if str_sub(glob, i, i + 2) == "**/" then
            flush()
            out[#out + 1] = { kind = "anydir" }
            i = i + 3
        elseif str_sub(glob, i, i + 1) == "**" then
            flush()
            out[#out + 1] = { kind = "any" }
            i = i + 2
        else
            local c = str_sub(glob, i, i)
            if c == "*" then
                flush()
                out[#out + 1] = { kind = "star" }
            elseif c == "?" then
                flush()
                out[#out + 1] = { kind = "one" }
            else
                lit = (lit or "") .. c
            end
            i = i + 1
        end
    end
    flush()
    return out
end

-- Does `tokens` match name[from..] to its end? Positions reachable after each
-- token, as a set: O(tokens × length²) at worst, once per name.
local function match_from(tokens, name, from)
    local n = #name
    local at = { [from] = true }
    for t = 1, #tokens do
        local tok, kind = tokens[t], tokens[t].kind
        local nxt, any = {}, false
        for p = from, n + 1 do
            if at[p] then
                if kind == "lit" then
                    local len = #tok.text
                    if str_sub(name, p, p + len - 1) == tok.text then
                        nxt[p + len] = true
                        any = true
                    end
                elseif kind == "one" then
                    if p <= n and str_byte(name, p) ~= SLASH then
                        nxt[p + 1] = true
                        any = true
                    end
                elseif kind == "star" then
                    local q = p
                    while true do
                        nxt[q] = true
                        any = true
                        if q > n or str_byte(name, q) == SLASH then
                            break
                        end
                        q = q + 1
                    end
                elseif kind == "any" then
                    for q = p, n + 1 do
                        nxt[q] = true
                    end
                    any = true
                else -- anydir
                    nxt[p] = true
                    any = true
                    for q = p, n do
                        if str_byte(name, q) == SLASH then
                            nxt[q + 1] = true
                        end
                    end
                end
            end
        end
        if not any then
            return false
        end
        at = nxt
    end
    return at[n + 1] == true
end

local function matches(globs, name)
    local first = str_byte(name, 1)
    if first == 64 or first == 61 then -- '@' or '='
        name = str_sub(name, 2)
    end
    for g = 1, #globs do
        local tokens = globs[g]
        if match_from(tokens, name, 1) then
            return true
        end
        local from = 1
        while true do
            local s = str_find(name, "/", from, true)
            if not s then
                break
            end
            if match_from(tokens, name, s + 1) then
                return true
            end
            from = s + 1
        end
    end
    return false
end

-- A matcher for `spec` (globs separated by commas, blanks dropped), or nil
-- and an error. matcher(source) -> true for a chunk name the globs match.
function _M.compile(spec)
    if type(spec) ~= "string" then
        return nil, "skip must be a string of comma-separated patterns"
    end
    local globs = {}
    for part in spec:gmatch("[^,]+") do
        local g = part:match("^%s*(.-)%s*$")
        if g ~= "" then
            local c = str_byte(g, 1)
            if c == 64 or c == 61 then
                g = str_sub(g, 2)
            end
            if #globs >= MAX_GLOBS then
                return nil, "skip has more than " .. MAX_GLOBS .. " patterns"
            end
            globs[#globs + 1] = tokens_of(g)
        end
    end
    local seen, count = {}, 0
    return function(source)
        local v = seen[source]
        if v == nil then
            v = #globs > 0 and matches(globs, source) or false
            if count >= MAX_NAMES then
                seen, count = {}, 0
            end
            seen[source] = v
            count = count + 1
        end
        return v
    end
end

-- The last matcher made, by its spec: a client asks with the same list each
-- time.
local last_spec, last_matcher

function _M.matcher(spec)
    if spec == last_spec then
        return last_matcher
    end
    local m, err = _M.compile(spec)
    if not m then
        return nil, err
    end
    last_spec, last_matcher = spec, m
    return m
end

-- A request's optional skip parameter as a matcher: nil when absent, or nil
-- and an error when it does not compile (Lua.getCoroutines, FFI.getTasks).
function _M.from_params(params)
    if params.skip == nil then
        return nil
    end
    local m, err = _M.matcher(params.skip)
    if not m then
        return nil, err
    end
    return m
end

return _M
