-- nffi: nonblocking FFI for stock nginx + lua-nginx-module, API-compatible with
-- lua-resty-ffi (ngx.load_ffi) and lua-resty-nonblocking-ffi (ngx.load_nonblocking_ffi).
--
--   local rt = require("nffi").load("nffi_echo", cfg, { max_queue = 1024, timeout = 500 })
--   local ok, res_or_rc, err = rt:anymethod(req)
local ffi = require "ffi"
local native = require "nffi.native"
local pump = require "nffi.pump"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local get_phase = ngx.get_phase
local worker_pid = ngx.worker.pid
local worker_exiting = ngx.worker.exiting
local ngx_sleep = ngx.sleep
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_load = ffi.load
local co_running = coroutine.running
local setmetatable = setmetatable
local tonumber = tonumber
local tostring = tostring
local type = type
local error = error
local pcall = pcall
local ipairs = ipairs
local next = next
local str_find = string.find
local str_gmatch = string.gmatch
local str_match = string.match
local math_min = math.min
local package = package

local consts = native.consts
local waiting = pump.waiting

local _M = { _VERSION = "0.1.0" }

local DEFAULT_MAX_QUEUE = 65536
-- "No timeout" waits this long: ngx.semaphore takes milliseconds as a C int,
-- so anything past ~24 days wraps and times out at once.
local FOREVER_S = 1000000
-- fallback wait step when the pump cannot run (worker exiting)
local FALLBACK_STEP_S = 0.002

-- phases where a coroutine may yield on a semaphore
local yieldable = {
    rewrite = true, server_rewrite = true, access = true, content = true,
    timer = true, ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local runtimes = {}       -- key "lib&cfg" -> runtime object
local runtime_list = {}   -- in load order, for stats
local state_of = setmetatable({}, { __mode = "k" })  -- runtime object -> private state

-- Coroutine tags passed to C so the inspector can name the waiting coroutine.
local co_tag = setmetatable({}, { __mode = "k" })
local tag_co = setmetatable({}, { __mode = "v" })
local next_tag = 0

local status_buf = ffi_new("int[1]")
-- scratch for the task hook's latencies: filled and read with no yield between
local info_buf = ffi_new("nffi_task_info")
local rsp_buf = ffi_new("char *[1]")
local rsp_len_buf = ffi_new("size_t[1]")

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

local function lib_candidates(lib)
    if str_find(lib, "/", 1, true) then
        return { lib }
    end
    local names = { "lib" .. lib .. ".so", lib .. ".so", lib }
    local dirs = { native.examples_dir }
    for tmpl in str_gmatch(package.cpath, "[^;]+") do
        local dir = str_match(tmpl, "^(.*)/[^/]*%?[^/]*$")
        if dir then
            dirs[#dirs + 1] = dir
        end
    end
    local out = {}
    for _, dir in ipairs(dirs) do
        for _, name in ipairs(names) do
            out[#out + 1] = dir .. "/" .. name
        end
    end
    return out
end

-- Like lua-resty-ffi: a path, or a name searched in our examples dir and the
-- package.cpath dirs before the dynamic linker's own search.
local function open_library(lib, is_global)
    for _, path in ipairs(lib_candidates(lib)) do
        if native.exists(path) then
            local ok, handle = pcall(ffi_load, path, is_global)
            if not ok then
                return nil, handle
            end
            return handle, path
        end
    end
    local ok, handle = pcall(ffi_load, lib, is_global)
    if not ok then
        return nil, "cannot load runtime library '" .. lib .. "': " .. tostring(handle)
    end
    return handle, lib
end

local function find_init(handle)
    for _, sym in ipairs({ "libffi_init", "lib_nonblocking_ffi_init" }) do
        local ok, fn = pcall(function() return handle[sym] end)
        if ok and fn then
            return fn
        end
    end
    return nil
end

-- Threads of the runtime library start here, in the worker, never in the
-- master: init_by_lua runs before fork and threads do not survive it.
local function start_runtime(st)
    if st.rt and st.pid == worker_pid() then
        return true
    end
    if get_phase() == "init" then
        return nil, "runtime not started yet: it starts in the worker on first use"
    end
    local C = native.lib()
    local rt = C.nffi_runtime_new(st.name, st.max_queue)
    if rt == nil then
        return nil, "out of memory"
    end
    if st.spin_us then
        C.nffi_runtime_set_poll_spin(rt, st.spin_us)
    end
    local cfg_buf
    if st.cfg then
        -- a writable copy: the ABI takes char *, and runtimes may not keep it
        cfg_buf = ffi_new("char[?]", #st.cfg + 1, st.cfg)
    end
    local rc = st.init(cfg_buf, rt)
    if rc ~= 0 then
        C.nffi_runtime_finish(rt)
        return nil, "runtime init failed with rc " .. tonumber(rc)
    end
    st.rt = rt
    st.pid = worker_pid()
    return true
end

local function wait_ready(C, t, id, timeout_s)
    local sema = sema_get()
    waiting[id] = sema
    if pump.ensure() then
        local ok = sema:wait(timeout_s)
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
end

function _M._task_hook()
    return task_hook
end

local MS = 1e-6

-- Latencies of a READY task in ms from its stamps (nil when not instrumented).
local function task_latency(C, t)
    if C.nffi_task_get_info(t, info_buf) ~= 0 or info_buf.t_enqueued == 0 then
        return nil
    end
    local enq, pol = tonumber(info_buf.t_enqueued), tonumber(info_buf.t_polled)
    local rsp, res = tonumber(info_buf.t_responded), tonumber(info_buf.t_resumed)
    return { queue = (pol - enq) * MS, service = (rsp - pol) * MS,
             wakeup = (res - rsp) * MS, total = (res - enq) * MS }
end

-- The resume phase of a call that failed before any response (no latencies).
local function task_failed(hook, st, method, req, err)
    pcall(hook, "resume", st.name, method, req, false, nil, nil, err, nil)
    return false, nil, err
end

local function call(st, method, req)
    if st.unloaded then
        return false, nil, "unloaded"
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
        return false, nil, err
    end

    local hook = task_hook
    if hook then
        pcall(hook, "enqueue", st.name, method, req)
    end
    local C = native.lib()
    local t = C.nffi_task_submit(st.rt, method, #method, req, #req,
                                 tag_of(co_running()), status_buf)
    if t == nil then
        local status = status_buf[0]
        if status == consts.EFULL then
            err = "queue full"
        elseif status == consts.EFINISHED then
            err = "unloaded"
        else
            err = "submit failed: " .. tonumber(status)
        end
        hook = task_hook
        if hook then
            return task_failed(hook, st, method, req, err)
        end
        return false, nil, err
    end

    -- spin only when nobody else waits: then the event loop has no other task
    -- completion to serve, and a short busy-wait beats two thread wake-ups
    if not (st.spin_ns > 0 and next(waiting) == nil and C.nffi_task_spin(t, st.spin_ns) == 1) then
        local id = tonumber(C.nffi_task_id(t))
        if not wait_ready(C, t, id, st.timeout_s) then
            C.nffi_task_abandon(t)
            if worker_exiting() then
                -- the pump may be idle waiting for this task: let it re-check
                C.nffi_wake_kick()
            end
            hook = task_hook
            if hook then
                return task_failed(hook, st, method, req, "timeout")
            end
            return false, nil, "timeout"
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
        C.nffi_task_release(t)
        rc = tonumber(rc)
        if rc == 0 then
            pcall(hook, "resume", st.name, method, req, true, res, 0, nil, lat)
            return true, res
        end
        pcall(hook, "resume", st.name, method, req, false, res, rc, res, lat)
        return false, rc, res
    end
    C.nffi_task_release(t)
    if rc == 0 then
        return true, res
    end
    return false, tonumber(rc), res
end
-- The inspector finds the caller of rt:method(...) as the frame above this one.
_M._call = call

local function unload(self)
    local st = state_of[self]
    if not st or st.unloaded then
        return
    end
    st.unloaded = true
    runtimes[st.key] = nil
    if st.rt then
        native.lib().nffi_runtime_finish(st.rt)
    end
end

local runtime_mt = {
    __index = function(self, method)
        if method == "__unload" then
            return unload
        end
        local st = state_of[self]
        local fn = function(_, req)
            return call(st, method, req)
        end
        -- cache per method: later calls skip __index
        rawset(self, method, fn)
        return fn
    end,
}

local function short_name(lib)
    local base = str_match(lib, "([^/]+)$") or lib
    return str_match(base, "^lib(.-)%.so") or str_match(base, "^(.-)%.so") or base
end

-- The inspector addresses runtimes by name, so names stay unique per worker.
local function unique_name(name)
    local taken = {}
    for _, st in ipairs(runtime_list) do
        taken[st.name] = true
    end
    if not taken[name] then
        return name
    end
    local i = 2
    while taken[name .. "#" .. i] do
        i = i + 1
    end
    return name .. "#" .. i
end

function _M.load(lib, cfg, opts)
    if type(lib) ~= "string" or lib == "" then
        error("nffi.load: lib must be a non-empty string", 2)
    end
    if cfg ~= nil and type(cfg) ~= "string" then
        error("nffi.load: cfg must be a string or nil", 2)
    end
    opts = opts or {}
    local key = cfg and (lib .. "&" .. cfg) or lib
    local existing = runtimes[key]
    if existing then
        return existing
    end

    -- first, so the runtime library's ngx_http_lua_ffi_* references bind to it
    native.lib()
    local handle, path = open_library(lib, opts.is_global)
    if not handle then
        return nil, path
    end
    local init = find_init(handle)
    if not init then
        return nil, "no libffi_init or lib_nonblocking_ffi_init in " .. path
    end

    local max_queue = opts.max_queue or DEFAULT_MAX_QUEUE
    local st = {
        key = key,
        lib = lib,
        path = path,
        cfg = cfg,
        name = unique_name(opts.name or short_name(lib)),
        max_queue = max_queue,
        timeout_s = opts.timeout and opts.timeout / 1000 or FOREVER_S,
        spin_us = opts.poll_spin_us,
        spin_ns = (opts.wait_spin_us or 0) * 1000,
        handle = handle,  -- pinned: runtime threads run its code until exit
        init = init,
    }
    local self = setmetatable({}, runtime_mt)
    state_of[self] = st

    if get_phase() ~= "init" then
        local ok, err = start_runtime(st)
        if not ok then
            return nil, err
        end
    end
    runtimes[key] = self
    runtime_list[#runtime_list + 1] = st
    return self
end

-- lua-resty-nonblocking-ffi passes (lib, cfg, max_queue, is_global)
local function load_compat(lib, cfg, opts, is_global)
    if type(opts) == "number" or is_global ~= nil then
        opts = { max_queue = type(opts) == "number" and opts or nil, is_global = is_global }
    end
    return _M.load(lib, cfg, opts)
end

ngx.load_ffi = load_compat
ngx.load_nonblocking_ffi = load_compat

local stats_buf = ffi_new("nffi_stats")

local lat_names = { "queue", "service", "wakeup", "total" }

local function latency(C, rt, kind)
    local ms = 1e-6
    return {
        p50 = C.nffi_runtime_quantile(rt, kind, 0.5) * ms,
        p99 = C.nffi_runtime_quantile(rt, kind, 0.99) * ms,
        max = tonumber(stats_buf.lat_max_ns[kind]) * ms,
        count = tonumber(stats_buf.lat_count[kind]),
    }
end

local function runtime_stats(C, st)
    C.nffi_runtime_stats(st.rt, stats_buf)
    local s = stats_buf
    local lat = {}
    for i, name in ipairs(lat_names) do
        lat[name] = latency(C, st.rt, i - 1)
    end
    return {
        name = st.name,
        lib = st.path,
        unloaded = st.unloaded or false,
        enqueued = tonumber(s.enqueued),
        polled = tonumber(s.polled),
        responded = tonumber(s.responded),
        completed = tonumber(s.resumed),
        timeouts = tonumber(s.timeouts),
        rejected = tonumber(s.rejected),
        late = tonumber(s.late),
        depth = tonumber(s.depth),
        in_flight = tonumber(s.in_flight),
        live = tonumber(s.live),
        max_queue = st.max_queue,
        latency_ms = lat,
    }
end

-- Stats of every started runtime in this worker. Reads counters without
-- stopping any runtime thread.
function _M.stats()
    local out = {}
    if #runtime_list == 0 then
        return out
    end
    local C = native.lib()
    for _, st in ipairs(runtime_list) do
        if st.rt and st.pid == worker_pid() then
            out[#out + 1] = runtime_stats(C, st)
        end
    end
    return out
end

local state_names = { [0] = "pending", "polled", "done", "ready", "abandoned" }
_M.task_state_names = state_names

local function task_entry(st, info, now)
    local t_enq = tonumber(info.t_enqueued)
    return {
        id = tonumber(info.id),
        runtime = st.name,
        method = ffi_string(info.method),
        state = state_names[info.state] or tostring(info.state),
        age_ms = t_enq > 0 and (now - t_enq) * 1e-6 or nil,
        req_len = tonumber(info.req_len),
        req_preview = ffi_string(info.preview, info.preview_len),
        rc = info.state >= consts.TASK_DONE and tonumber(info.rc) or nil,
        waiter = tonumber(info.waiter),
    }
end

-- Scratch for the task pages: filled and read with no yield between.
local PAGE_MAX = 256
local page_buf

local function page_scratch(max)
    if max > PAGE_MAX then
        return ffi_new("nffi_task_info[?]", max)
    end
    if not page_buf then
        page_buf = ffi_new("nffi_task_info[?]", PAGE_MAX)
    end
    return page_buf
end

-- One page of live tasks of a runtime (by name) with id > after_id.
function _M.tasks_page(name, after_id, max)
    max = max or PAGE_MAX
    local C = native.lib()
    for _, st in ipairs(runtime_list) do
        if st.name == name and st.rt and st.pid == worker_pid() then
            local buf = page_scratch(max)
            local n = C.nffi_runtime_tasks(st.rt, after_id or 0, buf, max)
            local now = tonumber(C.nffi_now_ns())
            local out = {}
            for i = 0, n - 1 do
                out[i + 1] = task_entry(st, buf[i], now)
            end
            return out
        end
    end
    return nil, "no runtime named " .. tostring(name)
end

local function state_by_rt(rt)
    for _, st in ipairs(runtime_list) do
        if st.rt == rt then
            return st
        end
    end
    return nil
end

-- Up to max (at most 256) live tasks of every runtime with id > after_id, in
-- the order they were enqueued, each as tasks_page gives it. With
-- enq_before_ns (nffi.now_ns() clock), only the tasks enqueued by then: they
-- come first, since that order is also the order of their stamps. Returns the
-- page and whether it ends the walk (no further task, or a younger one next).
-- The agent pages with the last id: each call costs O(max), however many tasks
-- are live, so no single step holds the worker long.
function _M.tasks_since(after_id, max, enq_before_ns)
    max = math_min(max or PAGE_MAX, PAGE_MAX)
    local out = {}
    if max <= 0 then
        return out, false
    end
    local C = native.lib()
    local buf = page_scratch(max)
    local n = C.nffi_tasks(after_id or 0, buf, max)
    local now = tonumber(C.nffi_now_ns())
    local st
    for i = 0, n - 1 do
        local info = buf[i]
        if enq_before_ns then
            local enq = tonumber(info.t_enqueued)
            -- no stamp (an uninstrumented libnffi): no task is older than anything
            if enq == 0 or enq > enq_before_ns then
                return out, true
            end
        end
        if not st or st.rt ~= info.runtime then
            st = state_by_rt(info.runtime) or { name = "?" }
        end
        out[#out + 1] = task_entry(st, info, now)
    end
    return out, n < max
end

local next_buf = ffi_new("uint64_t[1]")

-- How many live tasks (every runtime) with id > after_id were enqueued by
-- enq_before_ns (nil: at any time), visiting at most max_visit of them. Returns
-- the count and the id to go on after, or nil once the count is complete.
function _M.tasks_count(after_id, enq_before_ns, max_visit)
    local C = native.lib()
    local n = C.nffi_tasks_count(after_id or 0, enq_before_ns or 0, max_visit or 4096, next_buf)
    local nxt = tonumber(next_buf[0])
    return tonumber(n), nxt ~= 0 and nxt or nil
end

function _M.now_ns()
    return tonumber(native.lib().nffi_now_ns())
end

-- A bounded snapshot of live tasks across runtimes (at most `max`, default 1000).
function _M.tasks(max)
    max = max or 1000
    local out = {}
    for _, st in ipairs(runtime_list) do
        local after = 0
        while #out < max do
            local page = _M.tasks_page(st.name, after, math_min(256, max - #out))
            if not page or #page == 0 then
                break
            end
            for _, t in ipairs(page) do
                out[#out + 1] = t
            end
            after = page[#page].id
        end
    end
    return out
end

function _M.runtimes()
    local out = {}
    for _, st in ipairs(runtime_list) do
        out[#out + 1] = { name = st.name, lib = st.path, started = st.rt ~= nil,
                          unloaded = st.unloaded or false }
    end
    return out
end

function _M.instrumented()
    return native.lib().nffi_instrumented() ~= 0
end

return _M
