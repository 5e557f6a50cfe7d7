-- The hit path of line breakpoints (breakpoints.lua): the hook's index of
-- breakpoint lines, the line hook itself (the C hook of native/src/hook.c calls
-- it through the registry, bp_hook.lua installs one or the other), what a hit
-- does (condition, count, rate and muting, snapshot) and the queues the writer
-- (bp_writer.lua) ships: a ring of hits, control events, and the breakpoints
-- the hook retired. Nothing here yields; nothing raises out of the hook.
-- State: this module owns the index, the queues and the line records; the
-- hook's kind and libnffi (S.C, S.hook_kind) are bp_hook.lua's, read through
-- the state table breakpoints.lua passes to init.
local cond = require "nffi.inspect.cond"
local limits = require "nffi.inspect.limits"
local snapshot = require "nffi.inspect.snapshot"
local finder = require "nffi.inspect.finder"
local native = require "nffi.native"

local ngx = ngx
local ngx_now = ngx.now
local worker_pid = ngx.worker.pid
local debug_sethook = debug.sethook
local debug_getinfo = debug.getinfo
local type = type
local setmetatable = setmetatable
local next = next
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local co_running = coroutine.running
local math_floor = math.floor
local NIL = cond.NIL
local frame_vars = snapshot.frame_vars
local capture_frame = snapshot.capture_frame
local hit_frames = snapshot.frames
local request_of = snapshot.request_of
local count_hit = limits.count_hit
local refill = limits.refill
local drop = limits.drop
local ptr_of = native.ptr_of

local _M = { _VERSION = "0.1.0" }

local RING_MAX = 256
-- Stack level of the breakpoint frame inside on_hit: on_hit, pcall, hook, frame
local LEVEL = 4

local S                     -- the state shared with breakpoints.lua (init)
local by_line = {}          -- line -> { [source] = { bp, ... } }: the hook's index

-- ring of docs to ship; control events (armed/removed/error/dropped) in ctl
local ring, rhead, rtail = {}, 1, 1
local ctl, chead, ctail = {}, 1, 1
local to_remove = {}        -- bps the hook retired: { bp, reason }
local wake                  -- semaphore of the current session's writer
local stats = { hook_calls = 0, hits = 0, ring_drops = 0, writer_loops = 0 }
_M.stats = stats

function _M.init(state)
    S = state
end

local function push_ctl(doc)
    ctl[ctail] = doc
    ctail = ctail + 1
end

-- One post until the writer takes the queues (woken): a flood of hits while
-- it waits or sends would otherwise pile posts up, each a pass for nothing.
local signalled = false

local function signal()
    if wake and not signalled then
        signalled = true
        pcall(wake.post, wake, 1)
    end
end

-- The writer is about to take the queues: the next event posts again.
function _M.woken()
    signalled = false
end

-- Muted lines (native/src/hook_mute.c): a hot line's hits past the rate
-- dropped in the C hook, no Lua. The one breakpoint on that line number, with
-- no condition (it decides what a hit is) and no count (it must see every
-- hit).
local function sole_on_line(bp)
    local m = by_line[bp.line]
    local list = m and m[bp.source]
    return list ~= nil and #list == 1 and list[1] == bp and next(m, next(m)) == nil
end

-- The hits the C hook dropped for bp since the last look, into its counts.
local function absorb(bp)
    if bp.muted then
        local n = tonumber(S.C.nffi_hook_mute_take(bp.line))
        if n > 0 then
            bp.hits = bp.hits + n
            bp.dropped = bp.dropped + n
            bp.unreported = bp.unreported + n
            stats.hits = stats.hits + n
        end
    end
end

local function unmute(bp)
    if bp.muted then
        absorb(bp)
        S.C.nffi_hook_unmute(bp.line)
        bp.muted = nil
    end
end

-- From the hit path, on a drop over the rate: the line is muted until the
-- bucket has a token again (tokens: what is left in it).
local function mute(bp, now, tokens)
    if S.hook_kind ~= "c" or bp.cond or bp.count or not sole_on_line(bp) then
        return
    end
    absorb(bp)
    if S.C.nffi_hook_mute(bp.line, now + (1 - tokens) / bp.rate) ~= 0 or bp.muted then
        return
    end
    bp.muted = true
    local objs = bp.objs
    for i = 1, #objs do
        local p = ptr_of(objs[i])
        if p then
            S.C.nffi_hook_mute_fn(bp.line, p, type(objs[i]) == "proto" and 1 or 0)
        end
    end
end

local function describe(bp)
    absorb(bp)
    return {
        id = bp.id, spec = bp.spec, state = bp.state,
        source = bp.source and finder.name_of(bp.source) or nil,
        line = bp.line, hits = bp.hits, dropped = bp.dropped,
    }
end

-- Hit path ---------------------------------------------------------------

local function retire(bp, reason)
    if not bp.dead then
        bp.dead = reason
        to_remove[#to_remove + 1] = { bp, reason }
        -- nothing more for it to do until the writer removes it: its line goes
        -- quiet in the C hook now, unless another breakpoint shares the number
        if S.hook_kind == "c" and sole_on_line(bp) then
            unmute(bp)
            S.C.nffi_hook_set_line(bp.line, 0)
        end
    end
end

local function hit_one(bp, now)
    if bp.dead or bp.state ~= "armed" then
        return
    end
    if now >= bp.expires then
        return retire(bp, "timeout")
    end
    if bp.cond or bp.log then
        -- the breakpoint frame is LEVEL + 1 from here, LEVEL + 2 from a callee
        local locals, upvalues = {}, {}
        frame_vars(LEVEL + 2, locals, upvalues, false)
        cond.set_frame(locals, upvalues)
    end
    if bp.cond then
        local ok, res = pcall(bp.cond)
        if not ok then
            push_ctl({ method = "Debugger.error", params = { id = bp.id,
                       message = "condition: " .. tostring(res) } })
            return retire(bp, "error")
        end
        if not res then
            return
        end
    end
    stats.hits = stats.hits + 1
    if count_hit(bp) then
        retire(bp, "count")
    end
    local tokens = refill(bp, now)  -- rate: limits.lua's token bucket
    if tokens < 1 or rtail - rhead >= RING_MAX then
        drop(bp, tokens)
        if tokens >= 1 then
            stats.ring_drops = stats.ring_drops + 1
        else
            mute(bp, now, tokens)
        end
        return
    end
    bp.tokens = tokens - 1
    -- the breakpoint frame is LEVEL + 1 from here, LEVEL + 2 from a callee
    local params = { id = bp.id, pid = worker_pid(), time = now,
                     source = finder.name_of(bp.source), line = bp.line,
                     frames = hit_frames(LEVEL + 2), request = request_of() }
    if bp.log then
        local ok, msg = pcall(cond.render, bp.log)
        if not ok then
            push_ctl({ method = "Debugger.error", params = { id = bp.id,
                       message = "log: " .. tostring(msg) } })
            return retire(bp, "error")
        end
        params.message = msg
    else
        capture_frame(params, LEVEL + 2, true)
    end
    ring[rtail] = { method = "Debugger.hit", params = params }
    rtail = rtail + 1
end

local function on_hit(list)
    local now = ngx_now()
    for i = 1, #list do
        hit_one(list[i], now)
    end
    cond.set_frame(NIL, NIL)
    signal()
end

-- Repeated line events (the C hook drops them itself:
-- native/src/hook_repeat.c).
-- LuaJIT reports a line again when control comes back into its frame from a
-- call, or when the coroutine is resumed there after a yield: no new
-- execution. Per coroutine (weak keys), a stack of the frames on a breakpoint
-- line, innermost last: depth (stack levels up to the frame, 1 the
-- coroutine's first), function, line, and whether a call came since the
-- frame's own last line event. The same line again at that depth in that
-- function after a call is a repeat; the frame's next other line, a call into
-- its depth or any event below it ends the record. While any coroutine has
-- a record the Lua hook takes call events too ("cl"): a C function that yields
-- (ngx.sleep, a cosocket read) shows no other event before its line comes
-- again. With none, lines only ("l"): no cost on calls while no breakpoint
-- line is running. (Records of a collected coroutine go with it; the mask
-- follows at the next record dropped.)
local line_recs = setmetatable({}, { __mode = "k" })
local MAIN = {}             -- the main thread's key (coroutine.running() is nil there)
local calls_on = false      -- the hook's mask has "c": some coroutine may have records
local hook

local function forget(key)
    line_recs[key] = nil
    if next(line_recs) == nil then
        calls_on = false
        debug_sethook(hook, "l")
    end
end

-- Called from the hook, so the frame it runs for is level 3 here; its depth
-- is D when levels 3 .. D + 2 exist. Frames are only probed, never read.

-- Depth of the hook's frame, known to be at least lo.
local function depth_from(lo)
    local step = 1
    while debug_getinfo(lo + step + 2, "") do
        lo = lo + step
        step = step * 2
    end
    local hi = lo + step    -- lo <= D < hi
    while hi - lo > 1 do
        local mid = math_floor((lo + hi) / 2)
        if debug_getinfo(mid + 2, "") then
            lo = mid
        else
            hi = mid
        end
    end
    return lo
end

-- A call event (level 3: the callee): frames recorded at its depth or deeper
-- are gone or replaced; the one below has a callee.
local function rec_call(recs, key)
    local n = recs.n
    while n > 0 and not debug_getinfo(recs[n].d + 3, "") do
        recs[n] = nil
        n = n - 1
    end
    recs.n = n
    if n == 0 then
        forget(key)
    else
        recs[n].left = true
    end
end

-- A line event of a coroutine with records: true when it only repeats the
-- line its frame is on. fn: the frame's function on a breakpoint's line.
local function rec_line(recs, key, line, fn)
    local n = recs.n
    while n > 0 do
        local top = recs[n]
        if top.left and debug_getinfo(top.d + 3, "") then
            break           -- a callee's line
        end
        -- no call since its last line: this frame or one below it
        if top.left and top.line == line and (fn == nil or fn == top.fn)
           and debug_getinfo(top.d + 2, "") then
            top.left = false
            recs.n = n
            return true
        end
        recs[n] = nil       -- on another line, on this one again, or gone
        n = n - 1
    end
    recs.n = n
    if n == 0 then
        forget(key)
    end
    return false
end

-- A new execution of a breakpoint's line: its frame (depth d) is recorded.
local function rec_push(key, recs, line, fn, d)
    recs = recs or { n = 0 }
    line_recs[key] = recs
    local n = recs.n + 1
    recs[n] = { d = d, fn = fn, line = line, left = false }
    recs.n = n
    if not calls_on then
        calls_on = true
        debug_sethook(hook, "cl")
    end
end

-- The line hook: one table lookup rejects every line no breakpoint is on
-- (and one more while a coroutine has a frame on one); event nil: called by
-- the C hook.
function hook(event, line)
    if event == "call" then
        local key = co_running() or MAIN
        local recs = line_recs[key]
        if recs then
            rec_call(recs, key)
        end
        return
    end
    local m = by_line[line]
    if event == nil then
        if m then
            stats.hook_calls = stats.hook_calls + 1
            local list = m[debug_getinfo(2, "S").source]
            if list then
                pcall(on_hit, list)
            end
        end
        return
    end
    if not m then
        if calls_on then
            local key = co_running() or MAIN
            local recs = line_recs[key]
            if recs then
                rec_line(recs, key, line, nil)
            end
        end
        return
    end
    local key = co_running() or MAIN
    local recs = line_recs[key]
    stats.hook_calls = stats.hook_calls + 1
    local info = debug_getinfo(2, "Sf")
    local list = m[info.source]
    local fn = list and info.func
    if recs and rec_line(recs, key, line, fn) or not list then
        return
    end
    local n = recs and recs.n or 0  -- those left are below this frame
    rec_push(key, recs, line, fn, depth_from(n > 0 and recs[n].d + 1 or 1))
    pcall(on_hit, list)
end

-- Installs the Lua hook: lines only, no record from an earlier install (events
-- went unseen since).
local function lua_hook_on()
    line_recs = setmetatable({}, { __mode = "k" })
    calls_on = false
    debug_sethook(hook, "l")
end

-- The hook's index -----------------------------------------------------------

local function index(bp)
    local m = by_line[bp.line]
    if not m then
        m = {}
        by_line[bp.line] = m
    end
    -- a muted line drops whatever runs it in its functions: not with two
    for _, others in next, m do
        for i = 1, #others do
            unmute(others[i])
        end
    end
    local list = m[bp.source]
    if not list then
        list = {}
        m[bp.source] = list
    end
    list[#list + 1] = bp
    if S.hook_kind == "c" then
        S.C.nffi_hook_set_line(bp.line, 1)
    end
end

local function unindex(bp)
    local m = bp.line and by_line[bp.line]
    local list = m and m[bp.source]
    if not list then
        return
    end
    local new = {}
    for i = 1, #list do
        if list[i] ~= bp then
            new[#new + 1] = list[i]
        end
    end
    -- replaced, not edited: a hook walking the old list is never disturbed
    if #new == 0 then
        m[bp.source] = nil
        if next(m) == nil then
            by_line[bp.line] = nil
            if S.hook_kind == "c" then
                S.C.nffi_hook_set_line(bp.line, 0)
            end
        end
    else
        m[bp.source] = new
    end
end

-- Lines in the index, for the C hook's line bitmap: for line in lines() do
function _M.lines()
    return next, by_line
end

-- Queues ------------------------------------------------------------------------

-- Task breakpoints (taskbp.lua) put their hits in the same ring.
function _M.emit(doc)
    if rtail - rhead >= RING_MAX then
        stats.ring_drops = stats.ring_drops + 1
        return false
    end
    ring[rtail] = doc
    rtail = rtail + 1
    return true
end

-- Number of bps the hook retired and the writer has not removed yet.
function _M.nretired()
    return #to_remove
end

-- The bps the hook retired, { bp, reason } each, taken for removal.
function _M.take_retired()
    local list = to_remove
    if #list > 0 then
        to_remove = {}
    end
    return list
end

-- The writer's send of the queues, control events first, as one batch: the
-- link writes them back to back in as few sends as it can, so a flood of
-- hits costs the probe one read per batch, not one per hit. false when send
-- fails (the session is over).
local batch = {}

function _M.ship(send)
    local n = 0
    while chead < ctail do
        n = n + 1
        batch[n] = ctl[chead]
        ctl[chead] = nil
        chead = chead + 1
    end
    while rhead < rtail do
        n = n + 1
        batch[n] = ring[rhead]
        ring[rhead] = nil
        rhead = rhead + 1
    end
    if n == 0 then
        return true
    end
    local ok = send(batch, n)
    for i = 1, n do
        batch[i] = nil
    end
    return ok
end

-- The semaphore of the session's writer (bp_writer.lua) that signal() posts;
-- nil between sessions.
function _M.set_wake(sema)
    wake = sema
    signalled = false
end

-- Session end: the index and the queues emptied.
function _M.reset()
    by_line = {}
    to_remove = {}
    ring, rhead, rtail = {}, 1, 1
    ctl, chead, ctail = {}, 1, 1
end

_M.push_ctl = push_ctl
_M.signal = signal
_M.absorb = absorb
_M.unmute = unmute
_M.describe = describe
_M.hook = hook
_M.lua_hook_on = lua_hook_on
_M.index = index
_M.unindex = unindex

return _M
