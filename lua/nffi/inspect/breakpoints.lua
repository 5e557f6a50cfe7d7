-- Breakpoints that never stop the worker (Debugger domain of probe/protocol.json).
-- Arming: find the chunk (finder.lua), move LINE to the next line with code,
-- turn JIT off for the prototypes that run that line and flush traces
-- (jitctl.lua), index the line, install the line hook. The hook rejects any
-- line not in the index with one table lookup, then checks the source, the
-- condition (cond.lua), count, timeout and rate (limits.lua), and takes a
-- bounded snapshot (snapshot.lua) into a ring. It never yields and never raises. A writer light
-- thread of the session, woken through a semaphore, ships the ring as events.
-- A FILE with no loaded chunk is pending: a jit.attach "bc" handler arms it
-- when its chunk is compiled, before that chunk runs.
local json = require "nffi.inspect.json"
local coroutines = require "nffi.inspect.coroutines"
local cond = require "nffi.inspect.cond"
local limits = require "nffi.inspect.limits"
local snapshot = require "nffi.inspect.snapshot"
local finder = require "nffi.inspect.finder"
local jitctl = require "nffi.inspect.jitctl"
local taskbp = require "nffi.inspect.taskbp"
local semaphore = require "ngx.semaphore"
local jutil = require "jit.util"
local native = require "nffi.native"
local ffi = require "ffi"

local ngx = ngx
local ngx_now = ngx.now
local ngx_log = ngx.log
local WARN = ngx.WARN
local INFO = ngx.INFO
local worker_pid = ngx.worker.pid
local jit_attach = jit.attach
local funcinfo = jutil.funcinfo
local debug_sethook = debug.sethook
local debug_gethook = debug.gethook
local debug_getinfo = debug.getinfo
local type = type
local next = next
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local co_running = coroutine.running
local debug_getregistry = debug.getregistry
local ffi_cast = ffi.cast
local math_floor = math.floor
local array = json.array
local NIL = cond.NIL
local frame_vars = snapshot.frame_vars
local capture_frame = snapshot.capture_frame
local hit_frames = snapshot.frames
local request_of = snapshot.request_of
local count_hit = limits.count_hit
local refill = limits.refill
local drop = limits.drop
local report_removed = limits.report_removed

local _M = { _VERSION = "0.1.0", use_c_hook = true }  -- false: Lua hook (bench)

local RING_MAX = 256
local SERVICE_S = 0.25      -- writer wake-up when idle: timeouts, drop reports
-- Stack level of the breakpoint frame inside on_hit: on_hit, pcall, hook, frame
local LEVEL = 4

local bps = {}              -- id -> bp
local by_line = {}          -- line -> { [source] = { bp, ... } }: the hook's index
local narmed, npending = 0, 0
local next_id = 0
local hook_on = false
local HOOK_KEY = "nffi.inspect.bp_hook"  -- registry slot the C hook calls (native/src/hook.c)
local C                     -- libnffi when its C line hook can be used, else false
local hook_kind             -- "c" or "lua" while hook_on
local bc_on = false

-- ring of docs to ship; control events (armed/removed/error/dropped) in ctl
local ring, rhead, rtail = {}, 1, 1
local ctl, chead, ctail = {}, 1, 1
local to_remove = {}        -- bps the hook retired: { bp, reason }
local wake                  -- semaphore of the current session's writer
local stats = { hook_calls = 0, hits = 0, ring_drops = 0, writer_loops = 0 }
_M.stats = stats

local function push_ctl(doc)
    ctl[ctail] = doc
    ctail = ctail + 1
end

local function signal()
    if wake then
        pcall(wake.post, wake, 1)
    end
end

local function describe(bp)
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

-- The line hook: one table lookup rejects every line no breakpoint is on.
local function hook(_, line)
    local m = by_line[line]
    if not m then
        return
    end
    stats.hook_calls = stats.hook_calls + 1
    local list = m[debug_getinfo(2, "S").source]
    if list then
        pcall(on_hit, list)
    end
end

-- Arming --------------------------------------------------------------------

-- libnffi's C line hook (a bitmap test per line, Lua only on a breakpoint
-- line), or nil when the library or the host's lua_* symbols are missing.
local function c_hook()
    if C == nil then
        local ok, lib = pcall(native.lib)
        C = ok and lib.nffi_hook_available() == 1 and lib or false
    end
    return C or nil
end

-- lua_State* of the running coroutine (any state of the VM will do: LuaJIT
-- hooks are per VM); nil in the main thread. Never NULL: that kills the worker.
local function state_ptr()
    local co = co_running()
    local addr = co and tostring(co):match("^thread: 0x(%x+)$")
    local n = addr and tonumber(addr, 16)
    if not n or n == 0 then
        return nil
    end
    return ffi_cast("void *", ffi_cast("uintptr_t", n))
end

-- Whether the VM's current hook is the one we installed.
local function hook_ours()
    if hook_kind == "c" then
        local L = state_ptr()
        return L ~= nil and C.nffi_hook_installed(L) == 1
    end
    return debug_gethook() == hook
end

local function set_hook(on)
    if on and not hook_on then
        local h = debug_gethook()
        if h ~= nil and h ~= hook then
            return nil, "another debug hook is installed in this worker"
        end
        local lib, L = _M.use_c_hook and c_hook(), state_ptr()
        if lib and L ~= nil then
            debug_getregistry()[HOOK_KEY] = hook
            for line in next, by_line do
                lib.nffi_hook_set_line(line, 1)
            end
            lib.nffi_hook_install(L)
            hook_kind = "c"
        else
            debug_sethook(hook, "l")
            hook_kind = "lua"
        end
        hook_on = true
    elseif not on and hook_on then
        if hook_kind == "c" then
            local L = state_ptr()
            if L ~= nil then
                C.nffi_hook_remove(L)
            else
                debug_sethook()
            end
            C.nffi_hook_clear_lines()
            debug_getregistry()[HOOK_KEY] = nil
        else
            debug_sethook()
        end
        hook_on = false
        hook_kind = nil
    end
    return true
end

local function index(bp)
    local m = by_line[bp.line]
    if not m then
        m = {}
        by_line[bp.line] = m
    end
    local list = m[bp.source]
    if not list then
        list = {}
        m[bp.source] = list
    end
    list[#list + 1] = bp
    if hook_kind == "c" then
        C.nffi_hook_set_line(bp.line, 1)
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
            if hook_kind == "c" then
                C.nffi_hook_set_line(bp.line, 0)
            end
        end
    else
        m[bp.source] = new
    end
end

local bc_handler

local function set_bc(on)
    if on and not bc_on then
        bc_on = true
        jit_attach(bc_handler, "bc")
    elseif not on and bc_on then
        bc_on = false
        jit_attach(bc_handler)
    end
end

-- Arms bp at s (a finder source entry). flush: whether traces may hold it.
local function arm(bp, s, flush)
    local line, objs = finder.resolve_line(s, bp.spec.line)
    if not line then
        return nil, "no code at or after line " .. bp.spec.line .. " in "
                    .. finder.name_of(s.source)
    end
    local h = debug_gethook()
    if h ~= nil and not hook_ours() then
        return nil, "another debug hook is installed in this worker"
    end
    -- JIT work first: the trace scan runs before the hook slows this code down
    jitctl.watch()
    jitctl.off(objs)
    if flush then
        jitctl.flush_covering(objs)
    end
    local ok, err = set_hook(true)
    if not ok then
        jitctl.release(objs)
        return nil, err
    end
    if bp.state == "pending" then
        npending = npending - 1
    end
    bp.source, bp.line, bp.objs, bp.state = s.source, line, objs, "armed"
    bp.t_last = ngx_now()
    narmed = narmed + 1
    index(bp)
    return line
end

local function stop_if_idle()
    if npending == 0 then
        set_bc(false)
    end
    if narmed == 0 then
        set_hook(false)
        jitctl.restore_all()
    end
end

-- Removes bp for good; queues the removed event when reason is given.
local function remove(bp, reason)
    if bps[bp.id] ~= bp then
        return
    end
    bps[bp.id] = nil
    bp.dead = bp.dead or reason or "deleted"
    if bp.state == "armed" then
        unindex(bp)
        jitctl.release(bp.objs)
        narmed = narmed - 1
    elseif bp.state == "pending" then
        npending = npending - 1
    end
    bp.state = "disabled"
    stop_if_idle()
    if reason then
        report_removed(bp, reason, push_ctl)
    end
end

-- Code compiled while breakpoints are pending: prototypes arrive innermost
-- first, the chunk's main function last; the chunk is armed when its main
-- function arrives, before any of it has run.
bc_handler = function(proto)
    local ok, err = pcall(function()
        local info = funcinfo(proto)
        local src = info.source
        if not src then
            return
        end
        for _, bp in next, bps do
            if bp.state == "pending" and finder.matches(bp.spec.url, src) then
                local acc = bp.acc
                if not acc or acc.source ~= src then
                    acc = { source = src, protos = {} }
                    bp.acc = acc
                end
                acc.protos[#acc.protos + 1] = { obj = proto, linedefined = info.linedefined,
                                                lastlinedefined = info.lastlinedefined,
                                                bytecodes = info.bytecodes }
                if info.linedefined == 0 then
                    bp.acc = nil
                    local line, aerr = arm(bp, acc, false)
                    if line then
                        push_ctl({ method = "Debugger.armed",
                                   params = { breakpoint = describe(bp),
                                              moved_from = line ~= bp.spec.line
                                                           and bp.spec.line or nil } })
                        ngx_log(INFO, "[nffi bp ", bp.id, " armed ", finder.name_of(src), ":",
                                line, "]")
                    else
                        push_ctl({ method = "Debugger.error", params = { id = bp.id,
                                   message = aerr } })
                    end
                    signal()
                end
            end
        end
    end)
    if not ok then
        ngx_log(WARN, "[nffi bp bc handler error] ", err)
    end
end

-- Task breakpoints (ffi:RUNTIME.METHOD, taskbp.lua) share the ring, the
-- control events and the writer.
taskbp.init({
    emit = function(doc)
        if rtail - rhead >= RING_MAX then
            stats.ring_drops = stats.ring_drops + 1
            return false
        end
        ring[rtail] = doc
        rtail = rtail + 1
        return true
    end,
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
            until not bps[next_id] and not taskbp.has(next_id)
            tid = next_id
        elseif bps[tid] then
            remove(bps[tid], nil)  -- the probe re-sends an id to replace it
        end
        return taskbp.add(tbp, tid)
    end
    if type(spec.line) ~= "number" or spec.line < 1 or spec.line ~= math_floor(spec.line) then
        return nil, "spec.line must be a positive integer"
    end
    local bp = { spec = spec, state = "pending", hits = 0, dropped = 0, unreported = 0 }
    local ok, err = limits.parse(bp, spec)
    if not ok then
        return nil, err
    end
    local id = params.id
    if id ~= nil and (type(id) ~= "number" or id ~= math_floor(id)) then
        return nil, "id must be an integer"
    end
    if id == nil then
        repeat
            next_id = next_id + 1
        until not bps[next_id] and not taskbp.has(next_id)
        id = next_id
    end
    bp.id = id

    local sources = finder.collect(b)
    local cands = finder.candidates(spec.url, sources)
    if #cands > 1 then
        local names = {}
        for i = 1, #cands do
            names[i] = finder.name_of(cands[i])
        end
        return nil, "ambiguous FILE " .. spec.url .. ": " .. #cands .. " candidates: "
                    .. table.concat(names, ", ")
    end
    if bps[id] then
        remove(bps[id], nil)  -- the probe re-sends an id to replace it
    end
    taskbp.remove(id, nil)
    local res = {}
    if #cands == 0 then
        bps[id] = bp
        npending = npending + 1
        set_bc(true)
    else
        local line, aerr = arm(bp, sources[cands[1]], true)
        if not line then
            stop_if_idle()
            return nil, aerr
        end
        bps[id] = bp
        if line ~= spec.line then
            res.moved_from = spec.line
        end
        push_ctl({ method = "Debugger.armed", params = { breakpoint = describe(bp),
                                                          moved_from = res.moved_from } })
        signal()
        ngx_log(INFO, "[nffi bp ", id, " armed ", finder.name_of(bp.source), ":", line, "]")
    end
    res.breakpoint = describe(bp)
    return res
end

-- Debugger.removeBreakpoint {id}
function _M.remove_breakpoint(params)
    local bp = bps[params.id]
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
    for _, bp in next, bps do
        out[#out + 1] = describe(bp)
    end
    taskbp.list(out)
    table.sort(out, function(x, y) return x.id < y.id end)
    return { breakpoints = out }
end

-- Agent.getStats extras (hook and JIT counters; tests and bench read them)
function _M.get_stats()
    return { hook_calls = stats.hook_calls, hits = stats.hits, ring_drops = stats.ring_drops,
             hook = debug_gethook() ~= nil, hook_kind = hook_kind,
             armed = narmed, pending = npending,
             writer_loops = stats.writer_loops, tasks = taskbp.get_stats(),
             jit = jitctl.stats }
end

-- Session ---------------------------------------------------------------------

-- Retired bps, timeouts and drop reports; runs in the writer, never in the hook.
local function service()
    local list = to_remove
    if #list > 0 then
        to_remove = {}
        for i = 1, #list do
            remove(list[i][1], list[i][2])
        end
    end
    local now = ngx_now()
    limits.sweep(bps, now, remove, push_ctl)
    taskbp.service(now)
    if narmed > 0 and not hook_ours() then
        hook_on, hook_kind = false, nil
        set_hook(true)
    end
end

local function writer(send)
    local last = 0
    while true do
        wake:wait(SERVICE_S)
        stats.writer_loops = stats.writer_loops + 1
        local now = ngx_now()
        if #to_remove > 0 or now - last >= SERVICE_S then
            last = now
            service()
        end
        while chead < ctail do
            local doc = ctl[chead]
            ctl[chead] = nil
            chead = chead + 1
            if not send(doc) then
                return
            end
        end
        while rhead < rtail do
            local doc = ring[rhead]
            ring[rhead] = nil
            rhead = rhead + 1
            if not send(doc) then
                return
            end
        end
    end
end
coroutines.mark_own(writer, "thread")

-- Called by link.run in the session timer: spawns the writer light thread.
function _M.start_session(send)
    wake = semaphore.new(0)
    return ngx.thread.spawn(writer, send)
end

-- Session end: every breakpoint removed (reason detach), hook off, JIT restored.
function _M.reset()
    for _, bp in next, bps do
        remove(bp, nil)
    end
    bps, by_line, narmed, npending = {}, {}, 0, 0
    to_remove = {}
    ring, rhead, rtail = {}, 1, 1
    ctl, chead, ctail = {}, 1, 1
    taskbp.reset()
    set_bc(false)
    set_hook(false)
    jitctl.restore_all()
    wake = nil
end

return _M
