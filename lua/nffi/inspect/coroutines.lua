-- Every coroutine of the worker: the ones lua-nginx-module anchors in its
-- registry table (request entry threads, light threads, timers) and the user
-- coroutines reachable from their frames, each with an id that names it
-- while it runs and is never given to another within the worker's lifetime
-- (Lua.getCoroutines). In parts: coroutines_walk.lua finds
-- them, coroutines_info.lua says what each is (state, frames, kind, wait
-- reason), coroutines_request.lua the request it serves; ids and the handler
-- are here.
local json = require "nffi.inspect.json"
local walk = require "nffi.inspect.coroutines_walk"
local info = require "nffi.inspect.coroutines_info"
local request = require "nffi.inspect.coroutines_request"
local plumbing = require "nffi.inspect.plumbing"

local ngx = ngx
local timer_pending_count = ngx.timer.pending_count
local debug_getinfo = debug.getinfo
local type = type
local next = next
local pairs = pairs
local pcall = pcall
local setmetatable = setmetatable
local math_min = math.min
local math_floor = math.floor
local ngx_now = ngx.now
local array = json.array
local json_raw, json_encode = json.raw, json.encode
local tostring = tostring
local anchored_kind, state_of = info.anchored_kind, info.state_of
local frames_of, wait_of = info.frames_of, info.wait_of
local request_of = request.request_of
local exdata_of = request.exdata_of
-- LuaJIT 2.1's preallocating constructor; a plain table elsewhere
local ok_new, table_new = pcall(require, "table.new")
if not ok_new then
    table_new = function() return {} end
end

local _M = { _VERSION = "0.1.0" }

local DEFAULT_FRAMES = 3
local MAX_FRAMES = 50

-- coroutine <-> id, never reused within the worker's lifetime (weak on both
-- sides, so nothing is kept alive): `coroutines PID` then `stack PID ID` are
-- two sessions. lua-nginx-module reuses a finished thread for the next request,
-- timer or light thread (its thread cache), so a thread object is not one
-- coroutine: each run of it (an incarnation) gets its own id. A new run is
-- told from what the last look at the thread saw: it had ended (dead, or reset
-- to no frames) and has started again, or it has started before and now
-- serves another request (its exdata, compared, never followed). A thread
-- that ends and is reused between two looks with the same request address is
-- the one case this cannot tell.
-- coroutine -> id lives in generations, each made at its final size and never
-- written once full: one table that grows rehashes every key in one step
-- (4 ms at 65,536 coroutines). A lookup tries the newest first; generations
-- whose coroutines are all gone are dropped when a new one starts. Each
-- generation has a twin holding what the last look saw (seen_of).
local GEN_FIRST = 256
local GEN_MAX = 8192
local weak_k = { __mode = "k" }
local gens, seens = {}, {}
local gen_size, gen_used = 0, 0
local by_id = setmetatable({}, { __mode = "v" })
local next_id = 0

-- Coroutines found by the walk (coroutines_walk.lua) and what each is
-- (coroutines_info.lua, coroutines_request.lua), as before.
_M.mark_own = info.mark_own
_M.source_of = info.source_of
_M.wait_of = wait_of
_M.frame_of = info.frame_of
_M.frames_of = frames_of
_M.state_of = state_of
_M.anchored_kind = anchored_kind
_M.collect = walk.collect
_M.request_of = request_of

local function new_gen()
    local kept, kept_seen = {}, {}
    for i = 1, #gens do
        if next(gens[i]) ~= nil then
            kept[#kept + 1] = gens[i]
            kept_seen[#kept_seen + 1] = seens[i]
        end
    end
    gen_size = gen_size == 0 and GEN_FIRST or math_min(gen_size * 2, GEN_MAX)
    kept[#kept + 1] = setmetatable(table_new(0, gen_size), weak_k)
    kept_seen[#kept_seen + 1] = setmetatable(table_new(0, gen_size), weak_k)
    gens, seens, gen_used = kept, kept_seen, 0
end

local function new_id(co)
    next_id = next_id + 1
    by_id[next_id] = co
    return next_id
end

-- The id co has now, without looking at it again (nil: never seen).
local function known_id(co)
    for i = #gens, 1, -1 do
        local id = gens[i][co]
        if id then
            return id, i
        end
    end
    return nil
end

-- What a look at co sees: DEAD; FRESH (no frame: not started yet, e.g. a
-- pending timer or a cached thread handed out again); or, started, its
-- request address (exdata; true where libnffi cannot read it).
local DEAD, FRESH = "dead", "fresh"

local function look(co, state, started)
    if state == "dead" then
        return DEAD
    end
    if started == nil then
        started = debug_getinfo(co, 0, "l") ~= nil
    end
    if not started then
        return FRESH
    end
    return exdata_of(co) or true
end

-- Whether the thread began another run between two looks.
local function another_run(before, now)
    if before == DEAD then
        return now ~= DEAD
    elseif before == FRESH then
        return false  -- it started (or ended): the same run
    elseif now == FRESH then
        return true   -- ended, reset and handed out again
    end
    return now ~= DEAD and before ~= true and now ~= true and before ~= now
end

-- co's id, a new one when co has begun another run since the last look.
-- state/started: what the caller already knows (nil: looked up here).
function _M.id_of(co, state, started)
    local id, gi = known_id(co)
    if state == nil then
        state = state_of(co)
    end
    local now = look(co, state, started)
    if id then
        if another_run(seens[gi][co], now) then
            id = new_id(co)
            gens[gi][co] = id
        end
        seens[gi][co] = now
        return id
    end
    if gen_used == gen_size then
        new_gen()
    end
    id = new_id(co)
    gens[#gens][co] = id
    seens[#seens][co] = now
    gen_used = gen_used + 1
    return id
end

-- The coroutine id names, while that run goes on; nil, "finished" when it has
-- ended (or the thread runs something else now); nil when no such id was given.
function _M.by_id(id)
    local co = by_id[id]
    if co == nil then
        if type(id) == "number" and id >= 1 and id <= next_id then
            return nil, "finished"
        end
        return nil
    end
    local state = state_of(co)
    if state == "dead" or _M.id_of(co, state) ~= id then
        return nil, "finished"
    end
    return co
end

-- The last answer a client asked to build on (Lua.getCoroutines' since):
-- its epoch, the frames and skip it was walked with, and each coroutine's
-- encoded text by id. Texts are interned strings, so comparing one with the
-- next walk's is a pointer compare; the table (one answer's text) lives until
-- the next such request or the end of the session. Epochs start at the clock
-- (ms) of the worker's first such walk: a later worker with the same pid never
-- hands out an epoch a client still holds for the one before (walks come a
-- few a second, far slower than the clock).
local base = nil
local next_epoch = 0

-- Ends a session: drops the caches it built. Ids stay (see above).
function _M.reset()
    info.reset()
    request.reset()
    base = nil
end

-- The answer to a request with since: every coroutine encoded once; those
-- whose text is the same as in the base the client named are left out, and
-- the ids the base had that are gone are listed. A base the agent no longer
-- holds (another client asked since, a lost answer, other frames or skip)
-- or a walk cut short gets a whole answer.
local function against_base(res, out, since, shape, truncated, b)
    if truncated then
        -- a part of the coroutines is no base, and no delta over one
        base = nil
        return res
    end
    local texts = table_new(0, #out)
    local prev = base
    if prev and (prev.epoch ~= since or prev.shape ~= shape) then
        prev = nil
    end
    base = nil
    local changed = array()
    for i = 1, #out do
        local c = out[i]
        local text = json_encode(c, b)
        texts[c.id] = text
        if not prev or prev.texts[c.id] ~= text then
            changed[#changed + 1] = json_raw(text)
        end
    end
    res.coroutines = changed
    if prev then
        local gone = array()
        local n = 0
        for id in pairs(prev.texts) do
            if texts[id] == nil then
                gone[#gone + 1] = id
            end
            n = n + 1
            if n % 1024 == 0 then
                b:check()
            end
        end
        res.base = since
        res.gone = gone
    end
    if next_epoch == 0 then
        next_epoch = math_floor(ngx_now() * 1000)
    end
    next_epoch = next_epoch + 1
    base = { epoch = next_epoch, shape = shape, texts = texts }
    res.epoch = next_epoch
    return res
end

-- nil for the agent's own coroutines: the inspector does not show itself
-- skip: plumbing.lua's matcher when the client asked to skip to application code
function _M.describe(e, nframes, b, skip)
    local co = e.co
    local kind, mine = "user", false
    if not e.user then
        kind, mine = anchored_kind(co)
    end
    if mine then
        return nil
    end
    local state = state_of(co)
    local frames, skipped = frames_of(co, nframes, b, skip)
    local out = {
        kind = kind,
        state = state,
        frames = frames,
    }
    if skipped > 0 then
        out.skipped = skipped
    end
    -- a frame listed: it has started (saves a debug.getinfo per coroutine)
    local started = nframes > 0 and out.frames[1] ~= nil or nil
    out.id = _M.id_of(co, state, started)
    if state == "suspended" then
        out.wait = wait_of(co)
    end
    out.request = request_of(co, started, b)
    -- anchored and never run: a timer not fired yet, or an ngx.on_abort handler
    local unstarted = kind == "thread" and state == "suspended"
        and not (started or debug_getinfo(co, 0, "l"))
    return out, unstarted
end

-- Lua.getCoroutines
function _M.get_coroutines(params, b)
    local nframes = params.frames
    if nframes == nil then
        nframes = DEFAULT_FRAMES
    end
    -- (link.lua checked it already; this holds for direct callers too)
    if type(nframes) ~= "number" or nframes ~= nframes or nframes < 0
       or nframes ~= math.floor(nframes) then
        return nil, "frames must be a non-negative integer"
    end
    if nframes > MAX_FRAMES then
        nframes = MAX_FRAMES
    end
    local skip, serr = plumbing.from_params(params)
    if serr then
        return nil, serr
    end
    local pending = timer_pending_count()
    local list, truncated = _M.collect(b)
    if not list then
        return nil, truncated
    end
    local out, unstarted = array(), {}
    for i = 1, #list do
        local c, never_ran = _M.describe(list[i], nframes, b, skip)
        out[#out + 1] = c
        if never_ran then
            unstarted[#unstarted + 1] = c
        end
        b:check()  -- each unit is large: read the clock every time
    end
    -- Coroutines that never ran look alike whether they belong to a pending
    -- timer or to an ngx.on_abort handler. When there are exactly as many as
    -- lua-nginx-module counts pending timers, before and after the walk, they
    -- are all timers; otherwise they stay threads (no guess).
    if #unstarted > 0 and not truncated and timer_pending_count() == pending
       and pending == #unstarted then
        for i = 1, #unstarted do
            unstarted[i].kind = "timer"
        end
    end
    local res = { coroutines = out }
    if truncated then
        res.truncated = true
    end
    local since = params.since
    if since ~= nil then
        return against_base(res, out, since, nframes .. "|" .. tostring(params.skip), truncated, b)
    end
    return res
end

return _M
