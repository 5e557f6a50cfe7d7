-- nffi: nonblocking FFI for stock nginx + lua-nginx-module. Code written for
-- lua-resty-ffi (ngx.load_ffi) or lua-resty-nonblocking-ffi (ngx.load_nonblocking_ffi)
-- runs unchanged and gets back what it got there:
--
--   local rt, rc = ngx.load_ffi("nffi_echo", cfg, { max_queue = 1024 })
--       -- nil, rc when init returns rc ~= 0; ffi.load's error raised for a missing library
--   local ok, res_or_rc, rsp = rt:anymethod(req)       -- or rt(req)
--       -- true, response-or-nil, nil | false, rc, response-or-nil
--       -- | false, "post failed, queue full"
--       -- | false, "task queue is finished" (after rt:__unload())
--
-- nffi.load(lib, cfg, opts) is the same loader answering nil, "message" where
-- ngx.load_ffi raises or returns a bare rc. nffi adds opts.timeout (ms: then
-- false, "timeout"), name, wake, poll_spin_us, wait_spin_us and instrument; opts.unpin is
-- accepted and does nothing (the library stays loaded). README.md "Coming from
-- lua-resty-ffi" lists every difference and why.
-- In parts: runtime.lua keeps and starts the runtimes, call.lua makes a call
-- and waits for its result, stats.lua shows runtimes and tasks; pump.lua
-- wakes the waiters. This file is the public API.
local native = require "nffi.native"
local runtime = require "nffi.runtime"
local calls = require "nffi.call"
local stats = require "nffi.stats"

local ngx = ngx
local get_phase = ngx.get_phase
local setmetatable = setmetatable
local type = type
local error = error

local _M = { _VERSION = "0.1.0" }

local DEFAULT_MAX_QUEUE = 65536
-- "No timeout" waits this long: ngx.semaphore takes milliseconds as a C int,
-- so anything past ~24 days wraps and times out at once.
local FOREVER_S = 1000000

local runtimes, runtime_list, state_of = runtime.runtimes, runtime.list, runtime.state_of
local open_library, find_init, start_runtime =
    runtime.open_library, runtime.find_init, runtime.start_runtime
local short_name, unique_name = runtime.short_name, runtime.unique_name
local call = calls._call

-- For the inspector (lua/nffi/inspect/): the waiting coroutines, the task
-- hook and the call frame, as call.lua says.
_M.coroutine_of = calls.coroutine_of
_M._wait_ready = calls._wait_ready
_M._set_task_hook = calls._set_task_hook
_M._task_hook = calls._task_hook
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

-- rt(req): lua-resty-ffi's __call, a call whose method the inspector shows as this
local CALL_METHOD = "__call"

local runtime_mt = {
    __index = function(self, method)
        if method == "__unload" then
            return unload
        end
        local st = state_of[self]
        -- lua-resty-ffi's runtime object has this field: true after __unload
        if method == "finished" then
            return st.unloaded == true
        end
        local fn = function(_, req)
            return call(st, method, req)
        end
        -- cache per method: later calls skip __index
        rawset(self, method, fn)
        return fn
    end,
    __call = function(self, req)
        return call(state_of[self], CALL_METHOD, req)
    end,
}

-- strict (ngx.load_ffi, ngx.load_nonblocking_ffi): fail as lua-resty-ffi does,
-- raising what ffi.load or the missing init symbol raises there and returning
-- nil, rc when init fails; init_order: the init symbols to look for, in order.
-- Otherwise (nffi.load) nil and a message for each of those three.
local function load_runtime(lib, cfg, opts, strict, init_order)
    if type(lib) ~= "string" or lib == "" then
        error("nffi.load: lib must be a non-empty string", 2)
    end
    if cfg ~= nil and type(cfg) ~= "string" then
        error("nffi.load: cfg must be a string or nil", 2)
    end
    opts = opts or {}
    -- checked before the runtime is looked up: a bad option is an error even
    -- where a load of the same lib&cfg already made the runtime (whose
    -- options, like its cfg, are the first load's)
    if opts.wake ~= nil and opts.wake ~= "auto" and opts.wake ~= "pump" then
        error("nffi.load: opts.wake must be \"auto\" or \"pump\"", 2)
    end
    if opts.instrument ~= nil and type(opts.instrument) ~= "boolean" then
        error("nffi.load: opts.instrument must be a boolean", 2)
    end
    local key = cfg and (lib .. "&" .. cfg) or lib
    local existing = runtimes[key]
    if existing then
        return existing
    end

    -- first, so the runtime library's ngx_http_lua_ffi_* references bind to it
    native.lib()
    local handle, path, raw_err = open_library(lib, opts.is_global)
    if not handle then
        if strict then
            error(raw_err, 2)
        end
        return nil, path
    end
    local init, why = find_init(handle, init_order)
    if not init then
        if strict then
            error(why, 2)
        end
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
        -- the pump even where the worker's eventfd path is up (tests, comparisons)
        wake_forced = opts.wake == "pump" and 'opts.wake = "pump"' or nil,
        -- false: this runtime's tasks go unstamped and uncounted, as in libnffi_noinst
        instrument = opts.instrument,
        handle = handle,  -- pinned: runtime threads run its code until exit
        init = init,
    }
    local self = setmetatable({}, runtime_mt)
    state_of[self] = st

    if get_phase() ~= "init" then
        local ok, err, rc = start_runtime(st)
        if not ok then
            if strict and rc then
                return nil, rc
            end
            return nil, err
        end
    end
    runtimes[key] = self
    runtime_list[#runtime_list + 1] = st
    return self
end

function _M.load(lib, cfg, opts)
    return load_runtime(lib, cfg, opts, false)
end

-- lua-resty-nonblocking-ffi's first releases passed (lib, cfg, max_queue, is_global)
local function compat_opts(opts, is_global)
    if type(opts) == "number" or is_global ~= nil then
        return { max_queue = type(opts) == "number" and opts or nil, is_global = is_global }
    end
    return opts
end

local INIT_FFI_FIRST = runtime.INIT_FFI_FIRST
local INIT_NONBLOCKING_FIRST = runtime.INIT_NONBLOCKING_FIRST

function ngx.load_ffi(lib, cfg, opts, is_global)
    return load_runtime(lib, cfg, compat_opts(opts, is_global), true, INIT_FFI_FIRST)
end

function ngx.load_nonblocking_ffi(lib, cfg, opts, is_global)
    return load_runtime(lib, cfg, compat_opts(opts, is_global), true, INIT_NONBLOCKING_FIRST)
end

-- Stats and live tasks (stats.lua).
_M.stats = stats.stats
_M.task_state_names = stats.task_state_names
_M.tasks_page = stats.tasks_page
_M.tasks_since = stats.tasks_since
_M.tasks_count = stats.tasks_count
_M.now_ns = stats.now_ns
_M.tasks = stats.tasks
_M.runtimes = stats.runtimes
_M.instrumented = stats.instrumented
_M.wake_stats = stats.wake_stats

return _M
