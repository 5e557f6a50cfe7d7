-- A call to a runtime of the nffi binding (init.lua): the task submitted, the
-- calling coroutine parked on a semaphore until libnffi posts it from the
-- eventfd's handler in nginx's event loop (fastwake.lua) or the pump (pump.lua)
-- does, the result read; and the task hook the inspector's task breakpoints set.
local ffi = require "ffi"
local native = require "nffi.native"
local pump = require "nffi.pump"
local fastwake = require "nffi.fastwake"
local runtime = require "nffi.runtime"
local anchor = require "nffi.anchor"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local get_phase = ngx.get_phase
local worker_exiting = ngx.worker.exiting
local ngx_sleep = ngx.sleep
local ffi_new = ffi.new
local ffi_string = ffi.string
local co_running = coroutine.running
local setmetatable = setmetatable
local tonumber = tonumber
local type = type
local error = error
local pcall = pcall
local next = next
local pairs = pairs
local newproxy = newproxy
local getmetatable = getmetatable
local start_runtime = runtime.start_runtime
local hold, release = anchor.hold, anchor.release
local fast_active = fastwake.active

local consts = native.consts
local waiting = pump.waiting

local _M = { _VERSION = "0.1.0" }

-- fallback wait step when the pump cannot run (worker exiting)
local FALLBACK_STEP_S = 0.002

-- What a call returns when no response came, as lua-resty-ffi's post() does:
-- false and a string where code written for it reads the error (second).
local RET_FINISHED = "task queue is finished"  -- after rt:__unload()
local RET_FULL = "post failed, queue full"      -- max_queue tasks wait already
local RET_TIMEOUT = "timeout"                   -- nffi's opts.timeout, as cosockets say it
-- What the task hook gets instead (the inspector's words: taskbp, stats,
-- protocol.json's task err): unchanged by the return values above.
local HOOK_FULL, HOOK_UNLOADED, HOOK_TIMEOUT = "queue full", "unloaded", "timeout"

-- phases where a coroutine may yield on a semaphore
local yieldable = {
    rewrite = true, server_rewrite = true, access = true, content = true,
    timer = true, ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- Coroutine tags passed to C so the inspector can name the waiting coroutine.
local co_tag = setmetatable({}, { __mode = "k" })
local tag_co = setmetatable({}, { __mode = "v" })
local next_tag = 0

local status_buf = ffi_new("int[1]")
-- scratch for the task hook's latencies: filled and read with no yield between
local info_buf = ffi_new("nffi_task_info")
local rsp_buf = ffi_new("char *[1]")
local rsp_len_buf = ffi_new("size_t[1]")

-- Requests of BORROW_MIN bytes or more are lent to libnffi, not copied at
-- submit: the runtime thread that polls the task copies them, on its own CPU
-- (borrow.c says why). The string is held (anchor.lua) from submit until
-- libnffi frees the task. call()'s frame holds it too, but not once its
-- coroutine is killed while it waits (no poller may have taken the task yet),
-- nor past a timeout that abandons a task a poller may still be copying:
-- libnffi frees that one later and names it in nffi_borrow_freed; late_slot
-- maps its id to its slot. Shorter requests are copied: that costs less than
-- holding the string.
local BORROW_MIN = 256
local lent_held = 0
local late_slot = {}
local borrowed_late = 0
local FREED_MAX = 64
local freed_buf = ffi_new("uint64_t[?]", FREED_MAX)

local function lent_release(slot)
    release(slot)
    lent_held = lent_held - 1
end

local function borrowed_sweep(C)
    local n = C.nffi_borrow_freed(freed_buf, FREED_MAX)
    for i = 0, n - 1 do
        local id = tonumber(freed_buf[i])
        lent_release(late_slot[id])
        late_slot[id] = nil
    end
    borrowed_late = borrowed_late - n
end

-- A task whose waiter gave up (timeout) or is gone (sweep_dead): abandoned,
-- and its lent request let go now or once libnffi frees it.
local function give_up(C, t, id, lent)
    if C.nffi_task_abandon(t) == 0 then
        if lent then
            late_slot[id] = lent
            borrowed_late = borrowed_late + 1
        end
    elseif lent then
        lent_release(lent)
    end
end

-- A READY task's result is taken: it and its lent request go.
local function task_done(C, t, lent)
    C.nffi_task_release(t)
    if lent then
        lent_release(lent)
    end
end

-- For tests and the curious: requests held now, and of them those whose
-- tasks were abandoned while a runtime held them.
function _M._borrowed()
    return lent_held, borrowed_late
end

-- At exit nginx closes the worker's Lua state, which frees every string, held
-- or not, while runtime threads may still take tasks. lua_close runs every
-- finalizer before it frees anything: this one has libnffi copy each lent
-- request no poller took yet, and wait out copies in progress.
local exit_guard = newproxy(true)
local function quiesce(C)
    C.nffi_borrow_quiesce()
end
getmetatable(exit_guard).__gc = function()
    if lent_held > 0 then
        local ok, C = pcall(native.lib)
        if ok then
            pcall(quiesce, C)
        end
    end
end
_M._exit_guard = exit_guard

-- Semaphores are reused only after a wait that consumed its post: a timed-out
-- waiter's semaphore may still receive a late post, so it is dropped.
local sema_pool = {}
local sema_pool_n = 0
local SEMA_POOL_MAX = 1024

local function sema_get()
    if sema_pool_n > 0 then
        local s = sema_pool[sema_pool_n]
        sema_pool[sema_pool_n] = nil
        sema_pool_n = sema_pool_n - 1
        return s
    end
    return semaphore.new(0)
end

local function sema_put(s)
    if sema_pool_n < SEMA_POOL_MAX then
        sema_pool_n = sema_pool_n + 1
        sema_pool[sema_pool_n] = s
    end
end

local function tag_of(co)
    local tag = co_tag[co]
    if not tag then
        next_tag = next_tag + 1
        tag = next_tag
        co_tag[co] = tag
        tag_co[tag] = co
    end
    return tag
end

-- The coroutine that waits on a task, from the tag in its snapshot.
function _M.coroutine_of(tag)
    return tag_co[tag]
end

-- The semaphore libnffi posts when the task is READY is held (anchor.lua)
-- while C holds its address: a coroutine killed while waiting would otherwise
-- let the GC free it, and lua-nginx-module reuses freed semaphores.
-- fast_waiters: coroutines waiting so now.
local fast_waiters = 0

-- A light thread killed while it waits (ngx.thread.kill, its request
-- finalized) never comes back for its task: the task stayed live for good,
-- its semaphore and lent request held. Each wait is recorded by its
-- semaphore's slot (wait_pump: the task id a pump wait is filed under in
-- `waiting`, false on the eventfd path); every SWEEP_EVERY-th wait gives up
-- those whose coroutine the GC has collected (tag_co forgets it then), as a
-- timeout would.
local SWEEP_EVERY = 1024
local wait_tag, wait_task, wait_lent, wait_pump = {}, {}, {}, {}
local waits = 0

local function wait_end(slot)
    wait_tag[slot], wait_task[slot], wait_lent[slot] = false, false, false
    release(slot)
end

local function sweep_dead(C)
    for slot, tag in pairs(wait_tag) do
        if tag and tag_co[tag] == nil then
            local t, lent, pump_id = wait_task[slot], wait_lent[slot], wait_pump[slot]
            wait_end(slot)
            if pump_id then
                waiting[pump_id] = nil
            else
                fast_waiters = fast_waiters - 1
            end
            give_up(C, t, tonumber(C.nffi_task_id(t)), lent)
        end
    end
end

-- Records a wait (sweep_dead); returns the slot that holds its semaphore.
local function wait_begin(C, sema, tag, t, lent, pump_id)
    waits = waits + 1
    if waits >= SWEEP_EVERY then
        waits = 0
        sweep_dead(C)
    end
    local slot = hold(sema)
    wait_tag[slot], wait_task[slot], wait_lent[slot] = tag, t, lent or false
    wait_pump[slot] = pump_id or false
    return slot
end

-- Waits until the task is READY (true) or timeout_s passes (false). fast: the
-- eventfd path is up, libnffi posts the semaphore itself (nffi_task_set_sema);
-- otherwise the pump posts it, found in `waiting`. tag: the waiting
-- coroutine's; lent: the slot of its lent request, if any.
local function wait_ready(C, t, id, timeout_s, fast, tag, lent)
    local sema = sema_get()
    if fast and C.nffi_task_set_sema(t, sema.sem) == 0 then
        local slot = wait_begin(C, sema, tag, t, lent)
        fast_waiters = fast_waiters + 1
        local ok = sema:wait(timeout_s)
        fast_waiters = fast_waiters - 1
        wait_end(slot)
        if not ok then
            return false    -- the caller abandons the task, which forgets sema
        end
        sema_put(sema)      -- this wait consumed the post
        if C.nffi_task_state(t) == consts.TASK_READY then
            return true
        end
        -- woken without a result: the eventfd path stopped (the worker exits)
        sema = sema_get()
    end
    waiting[id] = sema
    if pump.ensure() then
        local slot = wait_begin(C, sema, tag, t, lent, id)
        local ok = sema:wait(timeout_s)
        wait_end(slot)
        if ok then
            sema_put(sema)
            return true
        end
        waiting[id] = nil
        return false
    end
    -- no pump (the worker is exiting): drain ourselves between short sleeps
    local left = timeout_s
    while left > 0 do
        pump.drain_now(C)
        if C.nffi_task_state(t) == consts.TASK_READY then
            waiting[id] = nil
            return true
        end
        ngx_sleep(FALLBACK_STEP_S)
        left = left - FALLBACK_STEP_S
    end
    waiting[id] = nil
    return false
end

-- For the inspector (lua/nffi/inspect/): a coroutine with this function on its
-- stack waits for the task whose id is its local `id`. Costs nothing here.
_M._wait_ready = wait_ready

-- Task breakpoints (lua/nffi/inspect/taskbp.lua): nil unless one is armed, so
-- call() pays one upvalue test before submit and one after the result. When
-- set, it runs in the calling coroutine under pcall and must never yield:
--   hook("enqueue", runtime, method, req)
--   hook("resume", runtime, method, req, ok, res, rc, err, latency_ms)
local task_hook

function _M._set_task_hook(fn)
    if fn ~= nil and type(fn) ~= "function" then
        error("nffi._set_task_hook: a function or nil", 2)
    end
    task_hook = fn
    -- the hook reports each task's latencies: stamp every task while it is set,
    -- not 1 in lat_sample_every (native/src/nffi_internal.h); no libnffi, no tasks
    local ok, C = pcall(native.lib)
    if ok then
        C.nffi_latency_all(fn and 1 or 0)
    end
end

function _M._task_hook()
    return task_hook
end

local MS = 1e-6

-- Latencies of a READY task in ms from its stamps (nil when not instrumented,
-- or for a task submitted before the hook was set that the sampling left out).
local function task_latency(C, t)
    if C.nffi_task_get_info(t, info_buf) ~= 0 or info_buf.t_resumed == 0 then
        return nil
    end
    local enq, pol = tonumber(info_buf.t_enqueued), tonumber(info_buf.t_polled)
    local rsp, res = tonumber(info_buf.t_responded), tonumber(info_buf.t_resumed)
    return { queue = (pol - enq) * MS, service = (rsp - pol) * MS,
             wakeup = (res - rsp) * MS, total = (res - enq) * MS }
end

-- The resume phase of a call that failed before any response (no latencies):
-- the hook gets err, the caller false, ret.
local function task_failed(hook, st, method, req, err, ret)
    pcall(hook, "resume", st.name, method, req, false, nil, nil, err, nil)
    return false, ret
end

-- What it returns is what lua-resty-ffi returns (its post() and the C handler
-- that resumes the caller with three values):
--   true, response-or-nil, nil        rc 0
--   false, rc, response-or-nil        rc ~= 0
--   false, "post failed, queue full"  refused: the queue is full
--   false, "task queue is finished"   after rt:__unload()
--   false, "timeout"                  opts.timeout passed (nffi only)
--   false, "runtime init failed with rc N"   a runtime loaded in init_by_lua
--                                     whose init fails on first use (nffi only)
local function call(st, method, req)
    if st.unloaded then
        return false, RET_FINISHED
    end
    local phase = get_phase()
    if not yieldable[phase] then
        error("nffi: runtime '" .. st.name .. "' called in the " .. phase
              .. " phase, which cannot yield (use rewrite/access/content or a timer)", 3)
    end
    if req == nil then
        req = ""
    elseif type(req) ~= "string" then
        error("nffi: request must be a string, got " .. type(req), 3)
    end
    local ok, err = start_runtime(st)
    if not ok then
        return false, err
    end

    local hook = task_hook
    if hook then
        pcall(hook, "enqueue", st.name, method, req)
    end
    local C = native.lib()
    if borrowed_late > 0 then
        borrowed_sweep(C)
    end
    local t, lent
    local tag = tag_of(co_running())
    if #req >= BORROW_MIN then
        -- held first: an error between a submit and the hold (out of memory)
        -- would leave a poller copying a string nobody holds
        lent = hold(req)
        lent_held = lent_held + 1
        t = C.nffi_task_submit_borrowed(st.rt, method, #method, req, #req,
                                        tag, status_buf)
        if t == nil then
            lent_release(lent)
        end
    else
        t = C.nffi_task_submit(st.rt, method, #method, req, #req,
                               tag, status_buf)
    end
    if t == nil then
        local status = status_buf[0]
        local ret
        if status == consts.EFULL then
            err, ret = HOOK_FULL, RET_FULL
        elseif status == consts.EFINISHED then
            err, ret = HOOK_UNLOADED, RET_FINISHED
        else
            err = "submit failed: " .. tonumber(status)
            ret = err
        end
        hook = task_hook
        if hook then
            return task_failed(hook, st, method, req, err, ret)
        end
        return false, ret
    end

    -- spin only when nobody else waits (on the pump or the eventfd): then the
    -- event loop has no other task completion to serve, and a short busy-wait
    -- beats two thread wake-ups
    if not (st.spin_ns > 0 and next(waiting) == nil and fast_waiters == 0
            and C.nffi_task_spin(t, st.spin_ns) == 1) then
        local id = tonumber(C.nffi_task_id(t))
        if not wait_ready(C, t, id, st.timeout_s, not st.wake_forced and fast_active(),
                          tag, lent) then
            give_up(C, t, id, lent)
            if worker_exiting() then
                -- the pump may be idle waiting for this task: let it re-check;
                -- the eventfd closes if nobody else waits on it
                C.nffi_wake_kick()
                fastwake.exit_check()
            end
            hook = task_hook
            if hook then
                return task_failed(hook, st, method, req, HOOK_TIMEOUT, RET_TIMEOUT)
            end
            return false, RET_TIMEOUT
        end
    end

    local rc = C.nffi_task_result(t, rsp_buf, rsp_len_buf)
    local res
    if rsp_buf[0] ~= nil then
        res = ffi_string(rsp_buf[0], rsp_len_buf[0])
    end
    hook = task_hook
    if hook then
        local lat = task_latency(C, t)
        task_done(C, t, lent)
        rc = tonumber(rc)
        if rc == 0 then
            pcall(hook, "resume", st.name, method, req, true, res, 0, nil, lat)
            return true, res, nil
        end
        pcall(hook, "resume", st.name, method, req, false, res, rc, res, lat)
        return false, rc, res
    end
    task_done(C, t, lent)
    if rc == 0 then
        return true, res, nil
    end
    return false, tonumber(rc), res
end
-- The inspector finds the caller of rt:method(...) as the frame above this one.
_M._call = call

return _M
