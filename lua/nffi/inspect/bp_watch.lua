-- Watching for line breakpoints (breakpoints.lua): hardware watchpoints on
-- the armed functions instead of a hook at rest, the heap walk and checks
-- behind them, and the mode a worker's hits are guaranteed by (mode_of), said
-- once per change in the error log (say_mode).
-- State: the watching state is this module's; it reads the hook's fields of
-- the state table breakpoints.lua passes to init (bp_hook.lua writes them).
local watchcheck = require "nffi.inspect.watchcheck"
local native = require "nffi.native"
local hook = require "nffi.inspect.bp_hook"

local ffi_string = require("ffi").string
local collectgarbage = collectgarbage
local ngx = ngx
local ngx_sleep = ngx.sleep
local ngx_log = ngx.log
local WARN = ngx.WARN
local INFO = ngx.INFO
local NOTICE = ngx.NOTICE
local rawget = rawget
local next = next
local pcall = pcall
-- LuaJIT's builtins (lua-nginx-module keeps them as coroutine._*)
local co_create_std = rawget(coroutine, "_create") or coroutine.create
local co_resume_std = rawget(coroutine, "_resume") or coroutine.resume
local co_yield_std = rawget(coroutine, "_yield") or coroutine.yield
local ptr_of = native.ptr_of
local c_hook = hook.c_hook
local calibrate = hook.calibrate
local state_ptr = hook.state_ptr

local _M = { _VERSION = "0.1.0" }

local S                     -- the state shared with breakpoints.lua (init)
local watch_gen = 0         -- the set of targets named to the C hook (S.names_gen) last watched
local watch_ready, watch_tries = false, 0  -- heap walk done for watch_gen / walks tried
local WATCH_SLICE_US = 1000  -- one slice of the heap walk
local WATCH_MAX = 4         -- x86 debug registers: watched functions at most (NFFI_WATCH_MAX)
local WATCH_TRIES = 3       -- walks per set of armed functions (the GC running meanwhile fails one)
local UNVERIFIED = "watching not verified yet for these functions"  -- on its way
local gc_stopped = false    -- the heap walk stopped the GC: restarted when it ends
local watch_fail            -- why watching is off for watch_gen (sticky until the set changes)
local session_watch         -- { ok, why }: the check run when the session started
local mode_said             -- the last mode line written to the error log

function _M.init(state)
    S = state
end

-- Watching (native/src/hook_watch.c, the heap walk native/src/heapwalk.c):
-- once the walk after the last arm is done, watchpoints on the armed functions
-- and a walk of the whole Lua heap let the hook go away while no coroutine is
-- inside one; each tick puts it back to watching. The heap walk goes in slices
-- with the GC stopped in between (no object may be freed under its cursor);
-- the GC is restarted however it ends.
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
    local rc = S.C.nffi_hook_watch_begin(p)
    while rc == 0 do
        rc = S.C.nffi_hook_watch_step(p, WATCH_SLICE_US)
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
                ffi_string(S.C.nffi_hook_watch_reason()))
    end
    return rc == 1
end

-- Which mechanism guarantees this worker's hits: "watching" (no hook at rest,
-- verified watchpoints), "call hook" (the call-gated C hook), "line hook" (the
-- C hook on every line), "lua hook" (the Lua fallback); reason whenever it is
-- not watching. expected: the resting mode an armed breakpoint will reach (for
-- the armed event, before the walk and check behind watching have run); else
-- the mode now. With nothing armed, the mode an arm would get.
local function mode_of(expected)
    local lib = S.opts.use_c_hook and c_hook()
    if S.hook_on and S.hook_kind == "lua" or not S.hook_on and not lib then
        return { mode = "lua hook", reason = S.opts.use_c_hook
                 and "libnffi's C hook is not available in this worker" or "C hook switched off" }
    end
    if S.hook_on and not S.gated or not S.hook_on and not (S.opts.gate and calibrate(lib)) then
        return { mode = "line hook", reason = S.ungated_why or "call gating switched off" }
    end
    if not S.opts.watch then
        return { mode = "call hook", reason = "watchpoints switched off" }
    end
    if S.hook_on and watch_fail and watch_gen == S.names_gen then
        return { mode = "call hook", reason = watch_fail }
    end
    if S.hook_on and S.C.nffi_hook_watch_ok() == 1 then
        return { mode = "watching" }
    end
    if session_watch and not session_watch.ok then
        return { mode = "call hook", reason = session_watch.why }
    end
    if not S.hook_on then
        return { mode = session_watch and "watching" or "call hook",
                 reason = not session_watch and "watchpoints not checked yet" or nil }
    end
    if expected then
        local n = 0
        for _ in next, S.target_keys do
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
    if not S.opts.watch or S.scanned_gen ~= S.scan_gen then
        return
    end
    if watch_gen ~= S.names_gen then
        -- a new set of watched functions: the chain proves itself again first
        watch_gen, watch_ready, watch_tries, watch_fail = S.names_gen, false, 0, nil
        local ok, why = watchcheck.run(S.C, state_ptr(), S.opts.watch_fault)
        if not ok then
            watch_fail = why
        end
    end
    if not watch_fail and not watch_ready and watch_tries < WATCH_TRIES then
        watch_tries = watch_tries + 1
        watch_ready = walk_heap()
        if not watch_ready and watch_tries == WATCH_TRIES then
            watch_fail = ffi_string(S.C.nffi_hook_watch_reason())
        end
    end
    if watch_ready and S.C.nffi_hook_watch_tick(ptr_of(S.hook_co)) == 0
       and S.C.nffi_hook_watch_ok() == 0 then
        -- the tick found traps could go astray (a tracer, another handler):
        -- the call hook until the set changes or a new session
        watch_ready, watch_fail = false, ffi_string(S.C.nffi_hook_watch_reason())
    end
end

-- Session start: what an arm will get here, checked once per session (workers
-- shows it).
function _M.start()
    local lib = S.opts.use_c_hook and c_hook()
    if lib and S.opts.watch and S.opts.gate and calibrate(lib) and not S.hook_on then
        local ok, why = watchcheck.run(lib, state_ptr(), S.opts.watch_fault)
        session_watch = { ok = ok, why = why }
    end
    say_mode()
end

-- Session end: the session's check, a sticky failure and the mode said go.
function _M.reset()
    session_watch, watch_fail, mode_said = nil, nil, nil
    watch_gen = -1  -- the next session checks again
end

_M.restart_gc = restart_gc
_M.mode_of = mode_of
_M.say_mode = say_mode
_M.tick = watch_tick

return _M
