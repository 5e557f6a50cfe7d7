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
local json = require "nffi.inspect.json"
local coroutines = require "nffi.inspect.coroutines"
local cond = require "nffi.inspect.cond"
local limits = require "nffi.inspect.limits"
local snapshot = require "nffi.inspect.snapshot"
local finder = require "nffi.inspect.finder"
local jitctl = require "nffi.inspect.jitctl"
local taskbp = require "nffi.inspect.taskbp"
local budget = require "nffi.inspect.budget"
local semaphore = require "ngx.semaphore"
local jutil = require "jit.util"
local native = require "nffi.native"
local vmevents = require "nffi.inspect.vmevents"
local watchcheck = require "nffi.inspect.watchcheck"

local ffi_string = require("ffi").string
local collectgarbage = collectgarbage
local ngx = ngx
local ngx_sleep = ngx.sleep
local ngx_now = ngx.now
local ngx_log = ngx.log
local WARN = ngx.WARN
local INFO = ngx.INFO
local NOTICE = ngx.NOTICE
local worker_pid = ngx.worker.pid
local funcinfo = jutil.funcinfo
local debug_sethook = debug.sethook
local debug_gethook = debug.gethook
local debug_getinfo = debug.getinfo
local type = type
local setmetatable = setmetatable
local rawget = rawget
local co_status = rawget(coroutine, "_status") or coroutine.status
local next = next
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local co_running = coroutine.running
-- LuaJIT's builtins (lua-nginx-module keeps them as coroutine._*), and its own
local co_create_std = rawget(coroutine, "_create") or coroutine.create
local co_resume_std = rawget(coroutine, "_resume") or coroutine.resume
local co_yield_std = rawget(coroutine, "_yield") or coroutine.yield
local co_wrap_std = rawget(coroutine, "_wrap") or coroutine.wrap
local co_resume_ngx = rawget(coroutine, "__resume")
local co_wrap_ngx = rawget(coroutine, "__wrap")
local debug_getregistry = debug.getregistry
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
local key_of = jitctl.key_of
local ptr_of = native.ptr_of

-- use_c_hook false: the Lua hook; gate false: the C hook sends every line (bench)
-- watch false: no hardware watchpoints, the gated hook stays a call hook (bench)
-- watch_fault "no-trap": the self-check sees no trap, as on a machine that
-- never delivers one (tests prove the fallback with it on every machine)
local _M = { _VERSION = "0.1.0", use_c_hook = true, gate = true, watch = true }

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
local gated = false         -- C hook in call-gated mode (native/src/hook.c, Gating)
local hook_co               -- a coroutine kept alive: its lua_State for the gating calls
local calibrated            -- nil: not tried; true/false: closure layout known
local INSIDE_KEY = "nffi.inspect.bp_inside"  -- coroutines the C hook saw enter a target
local target_keys = {}      -- jitctl.key_of of every armed function: resync walks
local scan_gen, scanned_gen = 0, 0  -- arms that asked for a full walk / the last one done
local names_gen, watch_gen = 0, 0   -- target sets named to the C hook / the last one watched
local watch_ready, watch_tries = false, 0  -- heap walk done for watch_gen / walks tried
local WATCH_SLICE_US = 1000  -- one slice of the heap walk
local WATCH_MAX = 4         -- x86 debug registers: watched functions at most (NFFI_WATCH_MAX)
local WATCH_TRIES = 3       -- walks per set of armed functions (the GC running meanwhile fails one)
local UNVERIFIED = "watching not verified yet for these functions"  -- on its way
local gc_stopped = false    -- the heap walk stopped the GC: restarted when it ends
local watch_fail            -- why watching is off for watch_gen (sticky until the set changes)
local ungated_why           -- why the C hook takes every line (not call-gated)
local session_watch         -- { ok, why }: the check run when the session started
local mode_said             -- the last mode line written to the error log
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

-- Muted lines (native/src/hook.c): a hot line's hits past the rate dropped in
-- the C hook, no Lua. The one breakpoint on that line number, with no
-- condition (it decides what a hit is) and no count (it must see every hit).
local function sole_on_line(bp)
    local m = by_line[bp.line]
    local list = m and m[bp.source]
    return list ~= nil and #list == 1 and list[1] == bp and next(m, next(m)) == nil
end

-- The hits the C hook dropped for bp since the last look, into its counts.
local function absorb(bp)
    if bp.muted then
        local n = tonumber(C.nffi_hook_mute_take(bp.line))
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
        C.nffi_hook_unmute(bp.line)
        bp.muted = nil
    end
end

-- From the hit path, on a drop over the rate: the line is muted until the
-- bucket has a token again (tokens: what is left in it).
local function mute(bp, now, tokens)
    if hook_kind ~= "c" or bp.cond or bp.count or not sole_on_line(bp) then
        return
    end
    absorb(bp)
    if C.nffi_hook_mute(bp.line, now + (1 - tokens) / bp.rate) ~= 0 or bp.muted then
        return
    end
    bp.muted = true
    local objs = bp.objs
    for i = 1, #objs do
        local p = ptr_of(objs[i])
        if p then
            C.nffi_hook_mute_fn(bp.line, p, type(objs[i]) == "proto" and 1 or 0)
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
        if hook_kind == "c" and sole_on_line(bp) then
            unmute(bp)
            C.nffi_hook_set_line(bp.line, 0)
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

-- Repeated line events (the C hook drops them itself: native/src/hook.c).
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
-- hooks are per VM); nil in the main thread.
local function state_ptr()
    return ptr_of(co_running())
end

-- The C hook names breakpointed functions by bytecode address; it learns where
-- a closure keeps it from a closure and prototype of ours.
local function make_probe()
    return function() return 1 end
end

local function noop() end

-- The gated hook must see a coroutine resumed inside a breakpointed function
-- (hook.c): it learns the functions that resume one from a coroutine of ours
-- suspended with them as locals, named for how they find the coroutine.
local function learn_resumers(lib)
    local ok, ngx_sample = pcall(co_wrap_ngx or co_wrap_std, noop)
    local h = co_create_std(function(resume_ngx, resume_std, wrapped_ngx, wrapped_std)
        co_yield_std()
        return resume_ngx, resume_std, wrapped_ngx, wrapped_std
    end)
    co_resume_std(h, co_resume_ngx, co_resume_std, ok and ngx_sample or nil, co_wrap_std(noop))
    local p = ptr_of(h)
    local n = p and lib.nffi_hook_learn_resumers(p) or 0
    co_resume_std(h)
    return n
end

local function calibrate(lib)
    if calibrated == nil then
        local fn, proto = make_probe(), jutil.funck(make_probe, -1)
        local pf, pp = ptr_of(fn), type(proto) == "proto" and ptr_of(proto)
        calibrated = pf ~= nil and pp ~= nil and lib.nffi_hook_calibrate(pf, pp) == 1
            and learn_resumers(lib) > 0
        if not calibrated then
            ungated_why = "closure layout or resume functions of this LuaJIT unknown"
        end
    end
    return calibrated
end

-- Names every armed function to the C hook; false when it cannot take them all.
local function name_targets()
    names_gen = names_gen + 1
    C.nffi_hook_targets_clear()
    target_keys = {}
    for _, bp in next, bps do
        if bp.state == "armed" then
            for i = 1, #bp.objs do
                local o = bp.objs[i]
                local p = ptr_of(o)
                if not p or C.nffi_hook_target(p, type(o) == "proto" and 1 or 0) ~= 0 then
                    return false
                end
                target_keys[key_of(o)] = true
            end
        end
    end
    return true
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
            local reg = debug_getregistry()
            reg[HOOK_KEY] = hook
            for line in next, by_line do
                lib.nffi_hook_set_line(line, 1)
            end
            -- lua_sethook needs any live state of the VM: this coroutine, kept
            -- referenced so its address stays valid for the gating calls
            hook_co = co_running()
            gated = _M.gate and calibrate(lib) or false
            if not _M.gate then
                ungated_why = "call gating switched off"
            end
            if gated then
                -- targets (and lines forced on meanwhile) come with retarget()
                reg[INSIDE_KEY] = setmetatable({}, { __mode = "k" })
            end
            lib.nffi_hook_install(L, gated and 1 or 0)
            hook_kind = "c"
        else
            lua_hook_on()
            hook_kind = "lua"
        end
        hook_on = true
    elseif not on and hook_on then
        if hook_kind == "c" then
            local L = state_ptr() or ptr_of(hook_co)
            if L ~= nil then
                C.nffi_hook_remove(L)
            else
                debug_sethook()
            end
            C.nffi_hook_clear_lines()
            C.nffi_hook_targets_clear()
            local reg = debug_getregistry()
            reg[HOOK_KEY], reg[INSIDE_KEY] = nil, nil
            gated, target_keys, hook_co = false, {}, nil
        else
            debug_sethook()
        end
        hook_on = false
        hook_kind = nil
    end
    return true
end

-- After arming (added) or removing: the C hook's targets follow the armed
-- breakpoints. A new target may have a coroutine suspended inside it, which no
-- call event will reveal: line events stay on until a full walk (resync).
local function retarget(added)
    if hook_kind ~= "c" or not gated then
        return
    end
    local L = ptr_of(hook_co)
    if not name_targets() then
        gated = false  -- more targets than the C hook holds: every line then
        C.nffi_hook_install(L, 0)
        ungated_why = "too many breakpointed functions for the call-gated hook"
        return
    end
    if added then
        C.nffi_hook_force_lines(L)
        scan_gen = scan_gen + 1
        signal()
    end
end

-- Frames of co running an armed function (0 for a dead or running coroutine).
local function target_depth(co)
    if co == co_running() or co_status(co) == "dead" then
        return 0
    end
    local d = 0
    for level = 0, 100000 do
        local info = debug_getinfo(co, level, "f")
        if not info then
            break
        end
        if target_keys[key_of(info.func)] then
            d = d + 1
        end
    end
    return d
end

-- Corrects the C hook's count of coroutines inside armed functions: the ones
-- it saw enter (an error unwinding past a frame skips its return event) and,
-- after an arm, every coroutine (full: may yield, budget b).
local function resync(full, b)
    local reg = debug_getregistry()
    local inside = reg[INSIDE_KEY]
    if not gated or type(inside) ~= "table" then
        return
    end
    local gen = scan_gen
    if full then
        local list = coroutines.collect(b)
        if not list then
            return  -- lines stay forced on; the next service walk tries again
        end
        for i = 1, #list do
            local co = list[i].co
            if target_depth(co) > 0 then
                inside[co] = true
            end
            b:step()  -- a yield here is safe: the hook keeps the counts it sees
        end
        if not gated or reg[INSIDE_KEY] ~= inside then
            return  -- the hook went away while the walk yielded
        end
    end
    C.nffi_hook_resync_begin()
    for co in next, inside do
        local d = target_depth(co)
        if d == 0 then
            inside[co] = nil
        end
        local p = ptr_of(co)
        if p then
            C.nffi_hook_resync_set(p, d)
        end
    end
    -- a walk that an arm overtook does not clear that arm's forced lines
    local done = full and gen == scan_gen
    C.nffi_hook_resync_end(ptr_of(hook_co), done and 1 or 0)
    if done then
        scanned_gen = gen
    end
end

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
local mode_of               -- defined with watching, below

local function set_bc(on)
    if on and not bc_on then
        bc_on = true
        vmevents.attach("bc", bc_handler)
    elseif not on and bc_on then
        bc_on = false
        vmevents.detach("bc", bc_handler)
    end
end

-- Arms bp at s (a finder source entry). b: a budget when traces may hold
-- it (they are cut, yielding between slices), nil for code not run yet.
local function arm(bp, s, b)
    local line, objs = finder.resolve_line(s, bp.spec.line, b)
    if not line then
        return nil, "no code at or after line " .. bp.spec.line .. " in "
                    .. finder.name_of(s.source)
    end
    if b and bps[bp.id] ~= bp then  -- removed, or the session ended, while it read lines
        return nil, "breakpoint removed while it was being armed"
    end
    local h = debug_gethook()
    if h ~= nil and not hook_ours() then
        return nil, "another debug hook is installed in this worker"
    end
    -- JIT work first: the trace scan runs before the hook slows this code down
    jitctl.watch()
    jitctl.off(objs)
    if b then
        jitctl.flush_covering(objs, b)
        if bps[bp.id] ~= bp then  -- removed, or the session ended, meanwhile
            jitctl.release(objs)
            return nil, "breakpoint removed while it was being armed"
        end
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
    retarget(true)
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
    unmute(bp)
    if bp.state == "armed" then
        unindex(bp)
        jitctl.release(bp.objs)
        narmed = narmed - 1
    elseif bp.state == "pending" then
        npending = npending - 1
    end
    bp.state = "disabled"
    stop_if_idle()
    retarget(false)
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
                    local line, aerr = arm(bp, acc, nil)
                    if line then
                        push_ctl({ method = "Debugger.armed",
                                   params = { breakpoint = describe(bp), mode = mode_of(true),
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
    local bp = { spec = spec, state = "new", hits = 0, dropped = 0, unreported = 0 }
    local ok, err = limits.parse(bp, spec, b)
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
    local cands = finder.candidates(spec.url, sources, b)
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
        bp.state = "pending"
        npending = npending + 1
        set_bc(true)
    else
        bps[id] = bp  -- before arming: the hook's targets are the armed bps
        local line, aerr = arm(bp, sources[cands[1]], b)
        if not line then
            bps[id] = nil
            stop_if_idle()
            return nil, aerr
        end
        if line ~= spec.line then
            res.moved_from = spec.line
        end
        push_ctl({ method = "Debugger.armed", params = { breakpoint = describe(bp),
                                                          mode = mode_of(true),
                                                          moved_from = res.moved_from } })
        signal()
        ngx_log(INFO, "[nffi bp ", id, " armed ", finder.name_of(bp.source), ":", line, "]")
    end
    res.breakpoint = describe(bp)
    res.mode = mode_of(true)
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

-- Agent.getStats extras (hook and JIT counters; tests and bench read them).
-- native: the C hook's calls, line matches, callback errors, event mask
-- (1 calls, 2 returns, 4 lines), whether it is call-gated, and how many
-- coroutines it counts inside armed functions (-1: lines forced on); watching:
-- no hook, hardware watchpoints instead (watch_reason: why not, when not).
function _M.get_stats()
    local lib, L = c_hook(), state_ptr()
    local native_hook
    if lib then
        native_hook = { calls = tonumber(lib.nffi_hook_calls()),
                        matches = tonumber(lib.nffi_hook_matches()),
                        errors = tonumber(lib.nffi_hook_errors()),
                        mask = L ~= nil and lib.nffi_hook_mask(L) or nil,
                        gated = gated, inside = tonumber(lib.nffi_hook_inside()),
                        resumes = tonumber(lib.nffi_hook_resumes()),
                        repeats = tonumber(lib.nffi_hook_repeats()),
                        fast = lib.nffi_hook_fast(),
                        watching = lib.nffi_hook_watching() == 1,
                        watch_entries = tonumber(lib.nffi_hook_watch_entries()),
                        watch_traps = tonumber(lib.nffi_watch_traps()),
                        watch_late = tonumber(lib.nffi_watch_late_traps()),
                        watch_reason = ffi_string(lib.nffi_hook_watch_reason()),
                        watch_ok = lib.nffi_hook_watch_ok() == 1,
                        muted = tonumber(lib.nffi_hook_muted()),
                        watch_checks = tonumber(lib.nffi_hook_watch_checks()),
                        watch_check_us = tonumber(lib.nffi_hook_watch_check_us()),
                        heap_objects = tonumber(lib.nffi_hook_heap_objects()),
                        heap_walk_us = tonumber(lib.nffi_hook_heap_walk_us()),
                        heap_slices = tonumber(lib.nffi_hook_heap_slices()),
                        heap_slice_max_us = tonumber(lib.nffi_hook_heap_slice_max_us()) }
    end
    return { native = native_hook, mode = mode_of(false),
             hook_calls = stats.hook_calls, hits = stats.hits,
             ring_drops = stats.ring_drops,
             hook = debug_gethook() ~= nil, hook_kind = hook_kind,
             armed = narmed, pending = npending,
             writer_loops = stats.writer_loops, tasks = taskbp.get_stats(),
             jit = jitctl.stats }
end

-- Watching (native/src/hook.c): once the walk after the last arm is done,
-- watchpoints on the armed functions and a walk of the whole Lua heap let the
-- hook go away while no coroutine is inside one; each tick puts it back to
-- watching. The heap walk goes in slices with the GC stopped in between (no
-- object may be freed under its cursor); the GC is restarted however it ends.
local function yield_once()
    co_yield_std()
end

local function restart_gc()
    if gc_stopped then
        gc_stopped = false
        collectgarbage("restart")
    end
end

local function walk_slices(helper)
    local p = ptr_of(helper)
    local rc = C.nffi_hook_watch_begin(p)
    while rc == 0 do
        rc = C.nffi_hook_watch_step(p, WATCH_SLICE_US)
        if rc == 0 then
            ngx_sleep(0)
        end
    end
    return rc
end

local function walk_heap()
    local helper = co_create_std(yield_once)
    co_resume_std(helper)
    if collectgarbage("isrunning") then
        gc_stopped = true
        collectgarbage("stop")
    end
    local ok, rc = pcall(walk_slices, helper)
    restart_gc()
    co_resume_std(helper)
    if not ok then
        ngx_log(WARN, "[nffi bp] heap walk: ", rc)
        return false
    end
    if rc < 0 then
        ngx_log(INFO, "[nffi bp] hook stays a call hook for now: ",
                ffi_string(C.nffi_hook_watch_reason()))
    end
    return rc == 1
end

-- Which mechanism guarantees this worker's hits: "watching" (no hook at rest,
-- verified watchpoints), "call hook" (the call-gated C hook), "line hook" (the
-- C hook on every line), "lua hook" (the Lua fallback); reason whenever it is
-- not watching. expected: the resting mode an armed breakpoint will reach (for
-- the armed event, before the walk and check behind watching have run); else
-- the mode now. With nothing armed, the mode an arm would get.
mode_of = function(expected)
    local lib = _M.use_c_hook and c_hook()
    if hook_on and hook_kind == "lua" or not hook_on and not lib then
        return { mode = "lua hook", reason = _M.use_c_hook
                 and "libnffi's C hook is not available in this worker" or "C hook switched off" }
    end
    if hook_on and not gated or not hook_on and not (_M.gate and calibrate(lib)) then
        return { mode = "line hook", reason = ungated_why or "call gating switched off" }
    end
    if not _M.watch then
        return { mode = "call hook", reason = "watchpoints switched off" }
    end
    if hook_on and watch_fail and watch_gen == names_gen then
        return { mode = "call hook", reason = watch_fail }
    end
    if hook_on and C.nffi_hook_watch_ok() == 1 then
        return { mode = "watching" }
    end
    if session_watch and not session_watch.ok then
        return { mode = "call hook", reason = session_watch.why }
    end
    if not hook_on then
        return { mode = session_watch and "watching" or "call hook",
                 reason = not session_watch and "watchpoints not checked yet" or nil }
    end
    if expected then
        local n = 0
        for _ in next, target_keys do
            n = n + 1
        end
        if n > WATCH_MAX then
            return { mode = "call hook", reason = "more than " .. WATCH_MAX .. " breakpointed"
                     .. " functions (the CPU has " .. WATCH_MAX .. " debug registers)" }
        end
        return { mode = "watching" }
    end
    return { mode = "call hook", reason = UNVERIFIED }
end

-- One fixed-format error log line whenever a worker's mode changes (not for
-- the moments between an arm and the check and walk behind watching):
-- [nffi bp mode watching] or [nffi bp mode call hook: REASON].
local function say_mode()
    local m = mode_of(false)
    if m.reason == UNVERIFIED then
        return
    end
    local line = m.reason and (m.mode .. ": " .. m.reason) or m.mode
    if line ~= mode_said then
        mode_said = line
        ngx_log(NOTICE, "[nffi bp mode ", line, "]")
    end
end

local function watch_tick()
    restart_gc()  -- a walk cut short (its light thread killed) left it stopped
    if not _M.watch or scanned_gen ~= scan_gen then
        return
    end
    if watch_gen ~= names_gen then
        -- a new set of watched functions: the chain proves itself again first
        watch_gen, watch_ready, watch_tries, watch_fail = names_gen, false, 0, nil
        local ok, why = watchcheck.run(C, state_ptr(), _M.watch_fault)
        if not ok then
            watch_fail = why
        end
    end
    if not watch_fail and not watch_ready and watch_tries < WATCH_TRIES then
        watch_tries = watch_tries + 1
        watch_ready = walk_heap()
        if not watch_ready and watch_tries == WATCH_TRIES then
            watch_fail = ffi_string(C.nffi_hook_watch_reason())
        end
    end
    if watch_ready and C.nffi_hook_watch_tick(ptr_of(hook_co)) == 0
       and C.nffi_hook_watch_ok() == 0 then
        -- the tick found traps could go astray (a tracer, another handler):
        -- the call hook until the set changes or a new session
        watch_ready, watch_fail = false, ffi_string(C.nffi_hook_watch_reason())
    end
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
    for _, bp in next, bps do
        absorb(bp)
    end
    limits.sweep(bps, now, remove, push_ctl)
    taskbp.service(now)
    if narmed > 0 and not hook_ours() then
        hook_on, hook_kind = false, nil
        set_hook(true)
        retarget(true)
    end
    if gated then
        if scanned_gen == scan_gen and C.nffi_hook_forced() == 1 then
            scan_gen = scan_gen + 1  -- a late watchpoint trap: lines on until a full walk
        end
        if scanned_gen ~= scan_gen then
            resync(true, budget.new())
        elseif C.nffi_hook_inside() ~= 0 then
            resync(false)
        end
        watch_tick()
    end
    say_mode()
end

local function writer(send)
    local last = 0
    while true do
        wake:wait(SERVICE_S)
        stats.writer_loops = stats.writer_loops + 1
        local now = ngx_now()
        if #to_remove > 0 or scanned_gen ~= scan_gen or now - last >= SERVICE_S then
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
    jitctl.track(true)
    wake = semaphore.new(0)
    -- what an arm will get here, checked once per session (workers shows it)
    local lib = _M.use_c_hook and c_hook()
    if lib and _M.watch and _M.gate and calibrate(lib) and not hook_on then
        local ok, why = watchcheck.run(lib, state_ptr(), _M.watch_fault)
        session_watch = { ok = ok, why = why }
    end
    say_mode()
    return ngx.thread.spawn(writer, send)
end

-- Session end: every breakpoint removed (reason detach), hook off, JIT restored.
function _M.reset()
    restart_gc()
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
    jitctl.track(false)
    wake = nil
    session_watch, watch_fail, mode_said = nil, nil, nil
    watch_gen = -1  -- the next session checks again
end

return _M
