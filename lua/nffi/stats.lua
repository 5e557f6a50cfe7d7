-- What the nffi binding (init.lua) shows the inspector of this worker's
-- runtimes: their stats and their live tasks, in pages. Reads counters and
-- task lists without stopping any runtime thread.
local ffi = require "ffi"
local native = require "nffi.native"
local runtime = require "nffi.runtime"
local fastwake = require "nffi.fastwake"

local ngx = ngx
local worker_pid = ngx.worker.pid
local ffi_new = ffi.new
local ffi_string = ffi.string
local tonumber = tonumber
local tostring = tostring
local ipairs = ipairs
local math_min = math.min

local consts = native.consts
local runtime_list = runtime.list

local _M = { _VERSION = "0.1.0" }

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
        -- past the one task a millisecond that is always stamped, 1 in this many has its latencies
        -- stamped and stands for as many in latency_ms (1: every task; 0: not
        -- instrumented); latency_samples: the tasks stamped
        latency_sample_every = tonumber(s.lat_sample_every),
        latency_samples = tonumber(s.lat_samples),
        -- pollers' spins for the worker's next batch while many calls are in flight
        -- (NFFI_FLIGHT_SPIN_US, off by default), from another CPU than the worker's:
        -- those that found it, and those that lost their CPU (then pollers sleep a
        -- while: a machine where spinning takes time from the worker)
        spins_in_flight = tonumber(s.spins_in_flight),
        spins_lost = tonumber(s.spins_lost),
        -- how responses reach this runtime's waiters, and why not the eventfd
        wake = (not st.wake_forced and fastwake.active()) and "eventfd" or "pump",
        wake_reason = st.wake_forced or fastwake.reason(),
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
        -- CLOCK_MONOTONIC, one clock for every worker of the host: views sort the tasks of
        -- several workers by it (ages taken at different moments reorder them)
        enqueued_ms = t_enq > 0 and t_enq * 1e-6 or nil,
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
-- page, whether it ends the walk (no further task, or a younger one next), and
-- the id to go on after: the last task visited, which with enq_before_ns may be
-- one left out (a task of a runtime that opted out of instrumentation has no
-- stamp, so no age: it is older than nothing).
-- The agent pages with that id: each call costs O(max), however many tasks
-- are live, so no single step holds the worker long.
function _M.tasks_since(after_id, max, enq_before_ns)
    max = math_min(max or PAGE_MAX, PAGE_MAX)
    local out = {}
    if max <= 0 then
        return out, false, after_id
    end
    local C = native.lib()
    if enq_before_ns and C.nffi_instrumented() == 0 then
        -- an uninstrumented libnffi stamps no task: none is older than anything
        return out, true, after_id
    end
    local buf = page_scratch(max)
    local n = C.nffi_tasks(after_id or 0, buf, max)
    local now = tonumber(C.nffi_now_ns())
    local st
    local visited = after_id
    for i = 0, n - 1 do
        local info = buf[i]
        local enq = enq_before_ns and tonumber(info.t_enqueued)
        if enq and enq > enq_before_ns then
            return out, true, visited
        end
        visited = tonumber(info.id)
        if enq ~= 0 then
            if not st or st.rt ~= info.runtime then
                st = state_by_rt(info.runtime) or { name = "?" }
            end
            out[#out + 1] = task_entry(st, info, now)
        end
    end
    return out, n < max, visited
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

-- The worker's wake-up path and its counters (fastwake.lua).
_M.wake_stats = fastwake.stats

function _M.instrumented()
    return native.lib().nffi_instrumented() ~= 0
end

return _M
