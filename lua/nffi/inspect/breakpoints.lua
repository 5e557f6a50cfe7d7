-- Breakpoints that never stop the worker (Debugger domain of probe/protocol.json).
-- Arming: find the chunk (finder.lua), move LINE to the next line with code,
-- turn JIT off for the prototypes that run that line and flush traces
-- (jitctl.lua), index the line, install the line hook. The C hook (native/src/
-- hook.c) is call-gated: it takes call events only, and line events only while
-- some coroutine is inside an armed function (and everywhere from an arm until
-- a walk of every coroutine, resync, has found those asleep inside it). The hook
-- rejects any line not in the index with one bitmap test, then checks the source, the
-- condition (cond.lua), count, timeout and rate (limits.lua), and takes a
-- bounded snapshot (snapshot.lua) into a ring. It never yields and never raises. A writer light
-- thread of the session, woken through a semaphore, ships the ring as events.
-- A FILE with no loaded chunk is pending: a jit.attach "bc" handler arms it
-- when its chunk is compiled, before that chunk runs.
-- This module: the Debugger handlers, the set of breakpoints and the session
-- (start, end). The rest, one concept each: bp_hits.lua (the hook's index, the
-- hook, the hit path, its ring and queues), bp_hook.lua (which hook, install,
-- calibration, call gating, resync), bp_arm.lua (arming, removal, pending
-- breakpoints), bp_watch.lua (watching and the mode), bp_writer.lua (the
-- session's writer and its service).
local json = require "nffi.inspect.json"
local limits = require "nffi.inspect.limits"
local finder = require "nffi.inspect.finder"
local jitctl = require "nffi.inspect.jitctl"
local taskbp = require "nffi.inspect.taskbp"
local hits = require "nffi.inspect.bp_hits"
local hook = require "nffi.inspect.bp_hook"
local watch = require "nffi.inspect.bp_watch"
local bparm = require "nffi.inspect.bp_arm"
local writer = require "nffi.inspect.bp_writer"
local hook_stats = require "nffi.inspect.hook_stats"

local ngx = ngx
local ngx_log = ngx.log
local INFO = ngx.INFO
local debug_gethook = debug.gethook
local type = type
local next = next
local tostring = tostring
local table_concat = table.concat
local table_sort = table.sort
local math_floor = math.floor
local str_gsub = string.gsub
local array = json.array
local describe = hits.describe
local push_ctl = hits.push_ctl
local signal = hits.signal
local stats = hits.stats
local mode_of = watch.mode_of
local arm = bparm.arm
local remove = bparm.remove
local stop_if_idle = bparm.stop_if_idle

-- use_c_hook false: the Lua hook; gate false: the C hook sends every line (bench)
-- watch false: no hardware watchpoints, the gated hook stays a call hook (bench)
-- watch_fault "no-trap": the self-check sees no trap, as on a machine that
-- never delivers one (tests prove the fallback with it on every machine)
local _M = { _VERSION = "0.1.0", use_c_hook = true, gate = true, watch = true }
_M.stats = stats

-- State shared by the breakpoint modules: this table, passed to each at init.
-- One writer per field: bps is the set (this module adds, bp_arm.lua removes,
-- reset replaces it), narmed and npending are bp_arm.lua's, the hook's fields
-- bp_hook.lua's; opts are the switches above (tests and bench set them on this
-- module's table).
local S = {
    opts = _M,
    bps = {},               -- id -> bp
    narmed = 0, npending = 0,
    C = nil,                -- libnffi when its C line hook can be used, else false
    hook_on = false,
    hook_kind = nil,        -- "c" or "lua" while hook_on
    gated = false,          -- C hook in call-gated mode (native/src/hook.c, Gating)
    hook_co = nil,          -- a coroutine kept alive: its lua_State for the gating calls
    target_keys = {},       -- jitctl.key_of of every armed function: resync walks
    scan_gen = 0, scanned_gen = 0,  -- arms that asked for a full walk / the last one done
    names_gen = 0,          -- target sets named to the C hook
    ungated_why = nil,      -- why the C hook takes every line (not call-gated)
}
hits.init(S)
hook.init(S)
watch.init(S)
bparm.init(S)
writer.init(S)
local next_id = 0
local NEAREST = 3           -- loaded chunk names offered for a FILE none matches

-- Task breakpoints (ffi:RUNTIME.METHOD, taskbp.lua) share the ring, the
-- control events and the writer.
taskbp.init({
    emit = hits.emit,
    control = push_ctl,
    signal = signal,
})

-- Handlers ------------------------------------------------------------------

-- Debugger.setBreakpoint {spec, id?}
function _M.set_breakpoint(params, b)
    local spec = params.spec
    if type(spec) ~= "table" then
        return nil, "spec must be an object"
    end
    if type(spec.url) ~= "string" or spec.url == "" then
        return nil, "spec.url must be a FILE (path suffix or chunk name)"
    end
    if taskbp.is_task(spec.url) then
        local tbp, terr = taskbp.compile(spec)
        if not tbp then
            return nil, terr
        end
        local tid = params.id
        if tid == nil then
            repeat
                next_id = next_id + 1
            until not S.bps[next_id] and not taskbp.has(next_id)
            tid = next_id
        elseif S.bps[tid] then
            remove(S.bps[tid], nil)  -- the probe re-sends an id to replace it
        end
        return taskbp.add(tbp, tid)
    end
    if type(spec.line) ~= "number" or spec.line < 1 or spec.line ~= math_floor(spec.line) then
        return nil, "spec.line must be a positive integer"
    end
    local bp = { spec = spec, state = "new", hits = 0, dropped = 0, unreported = 0 }
    local ok, err = limits.parse(bp, spec, b)
    if not ok then
        -- a template's own word (limits.lua says "log")
        return nil, (str_gsub(err, "^log rejected: ", "log template rejected: "))
    end
    local id = params.id
    if id ~= nil and (type(id) ~= "number" or id ~= math_floor(id)) then
        return nil, "id must be an integer"
    end
    if id == nil then
        repeat
            next_id = next_id + 1
        until not S.bps[next_id] and not taskbp.has(next_id)
        id = next_id
    end
    bp.id = id

    local sources = finder.collect(b)
    local cands = finder.candidates(spec.url, sources, b)
    if #cands > 1 then
        local names = {}
        for i = 1, #cands do
            names[i] = finder.name_of(cands[i])
        end
        return nil, "ambiguous FILE " .. spec.url .. ": " .. #cands .. " candidates: "
                    .. table_concat(names, ", ")
    end
    if S.bps[id] then
        remove(S.bps[id], nil)  -- the probe re-sends an id to replace it
    end
    taskbp.remove(id, nil)
    local res = {}
    if #cands == 0 then
        bparm.pend(bp)
        -- the loaded chunks it may have meant (the front end says them)
        res.nearest = array(finder.nearest(spec.url, sources, NEAREST, b))
    else
        S.bps[id] = bp  -- before arming: the hook's targets are the armed bps
        local line, aerr = arm(bp, sources[cands[1]], b)
        if not line then
            S.bps[id] = nil
            stop_if_idle()
            return nil, aerr
        end
        if line ~= spec.line then
            res.moved_from = spec.line
            -- not in any function left to run: the top level ran when the file loaded
            if not finder.in_function(sources[cands[1]], spec.line) then
                res.top_level = true
            end
        end
        push_ctl({ method = "Debugger.armed", params = { breakpoint = describe(bp),
                                                          mode = mode_of(true),
                                                          moved_from = res.moved_from,
                                                          top_level = res.top_level } })
        signal()
        ngx_log(INFO, "[nffi bp ", id, " armed ", finder.name_of(bp.source), ":", line, "]")
    end
    res.breakpoint = describe(bp)
    res.mode = mode_of(true)
    return res
end

-- Debugger.removeBreakpoint {id}
function _M.remove_breakpoint(params)
    local bp = S.bps[params.id]
    if not bp and taskbp.remove(params.id, "deleted") then
        signal()
        return {}
    end
    if not bp then
        return nil, "unknown breakpoint " .. tostring(params.id)
    end
    remove(bp, "deleted")
    signal()
    return {}
end

-- Debugger.getBreakpoints
function _M.get_breakpoints()
    local out = array()
    for _, bp in next, S.bps do
        out[#out + 1] = describe(bp)
    end
    taskbp.list(out)
    table_sort(out, function(x, y) return x.id < y.id end)
    return { breakpoints = out }
end

-- Agent.getStats extras (hook and JIT counters; tests and bench read them).
-- native: the C hook's counters and state (hook_stats.lua, from
-- native/src/hook_stats.c): its calls, line matches, callback errors, event
-- mask (1 calls, 2 returns, 4 lines), how many coroutines it counts inside
-- armed functions (-1: lines forced on), watching: no hook, hardware
-- watchpoints instead (watch_reason: why not, when not); and whether it is
-- call-gated (ours). mode: bp_watch.lua's.
function _M.get_stats()
    local lib, L = hook.c_hook(), hook.state_ptr()
    local native_hook
    if lib then
        -- the library's part in one nffi_hook_get_stats call; gated is ours
        native_hook = hook_stats.read(lib, L)
        native_hook.gated = S.gated
    end
    return { native = native_hook, mode = mode_of(false),
             hook_calls = stats.hook_calls, hits = stats.hits,
             ring_drops = stats.ring_drops,
             hook = debug_gethook() ~= nil, hook_kind = S.hook_kind,
             armed = S.narmed, pending = S.npending,
             writer_loops = stats.writer_loops, tasks = taskbp.get_stats(),
             jit = jitctl.stats }
end

-- Called by link.run in the session timer: spawns the writer light thread.
function _M.start_session(send)
    jitctl.track(true)
    writer.open()
    watch.start()
    return writer.spawn(send)
end

-- Session end: every breakpoint removed (reason detach), hook off, JIT restored.
function _M.reset()
    watch.restart_gc()
    for _, bp in next, S.bps do
        remove(bp, nil)
    end
    S.bps, S.narmed, S.npending = {}, 0, 0
    hits.reset()
    taskbp.reset()
    bparm.set_bc(false)
    hook.set_hook(false)
    jitctl.restore_all()
    jitctl.track(false)
    writer.close()
    watch.reset()
end

return _M
