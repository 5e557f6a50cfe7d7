-- Round-trip benchmark run inside one nginx worker: the same echo payload
-- through nffi, a unix-domain-socket echo server, and ngx.run_worker_thread.
-- Timing happens here, next to the calls, so the HTTP client adds nothing.
local ffi = require "ffi"
local nffi = require "nffi"
local native = require "nffi.native"
local runtime = require "nffi.runtime"
local fastwake = require "nffi.fastwake"
local cjson = require "cjson.safe"
local uds = require "bench_uds"

local ngx = ngx
local var = ngx.var
local spawn = ngx.thread.spawn
local wait = ngx.thread.wait
local run_worker_thread = ngx.run_worker_thread -- luacheck: ignore (not in the std yet)
local str_rep = string.rep
local table_sort = table.sort
local table_new = require "table.new"
local floor = math.floor
local tonumber = tonumber
local tostring = tostring

local _M = {}

local C = native.lib()
local now_ns = C.nffi_now_ns

-- CPU time of the whole worker process (its runtime threads and thread pool
-- included): what a call costs, which a loaded machine's wall clock hides
pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } bench_ffi_timespec;
int clock_gettime(int clk, bench_ffi_timespec *ts);
]])
local CLOCK_PROCESS_CPUTIME_ID = 2
local cpu_ts = ffi.new("bench_ffi_timespec")
local function process_cpu_ns()
    ffi.C.clock_gettime(CLOCK_PROCESS_CPUTIME_ID, cpu_ts)
    return tonumber(cpu_ts.tv_sec) * 1e9 + tonumber(cpu_ts.tv_nsec)
end

-- the worker's own thread (the event loop): what limits calls/s when the
-- threads it waits for run on another CPU
local CLOCK_THREAD_CPUTIME_ID = 3
local function thread_cpu_ns()
    ffi.C.clock_gettime(CLOCK_THREAD_CPUTIME_ID, cpu_ts)
    return tonumber(cpu_ts.tv_sec) * 1e9 + tonumber(cpu_ts.tv_nsec)
end

-- fn(...) in conc light threads at once; returns when all have, raises what
-- one raised
local function in_threads(conc, fn, ...)
    local threads = {}
    for i = 1, conc do
        threads[i] = spawn(fn, ...)
    end
    for i = 1, conc do
        local ok, err = wait(threads[i])
        if not ok then
            error(err)
        end
    end
end

-- bench_inst.lua's too
_M.process_cpu_ns, _M.in_threads = process_cpu_ns, in_threads

local callers = {}

function callers.nffi(opts)
    local rt = assert(nffi.load("nffi_echo", opts.cfg, {
        name = "bench", poll_spin_us = opts.poll_spin_us, wait_spin_us = opts.wait_spin_us,
        wake = opts.wake,
    }))
    opts.nffi_state = runtime.state_of[rt]
    return function(payload)
        local ok, res = rt:echo(payload)
        return ok and res
    end
end

function callers.uds(opts)
    local sock, call = uds.client(opts.uds_path)
    local frame = uds.frame
    return function(payload)
        return call(frame(payload))
    end, function()
        sock:setkeepalive()
    end
end

function callers.worker_thread(opts)
    return function(payload)
        local ok, res = run_worker_thread(opts.pool, "bench_thread_echo", "echo", payload)
        return ok and res
    end
end

-- n calls in a loop; latencies (ns) appended to lat
local function loop(make, opts, payload, n, lat)
    local call, close = make(opts)
    for _ = 1, n do
        local t0 = now_ns()
        local res = call(payload)
        lat[#lat + 1] = tonumber(now_ns() - t0)
        if res ~= payload then
            error("bad echo of " .. #payload .. " bytes")
        end
    end
    if close then
        close()
    end
end

-- a libnffi from before the eventfd path has no wake_stats: the pump
local function wake_path()
    return nffi.wake_stats and nffi.wake_stats().path or "pump"
end

-- The runtime's latency sums and counts (queue, service, wake-up), to tell
-- where a measured window's time went: means over the calls in between.
local lat_buf = ffi.new("nffi_stats")
local function lat_sums(st)
    if not (st and st.rt) then
        return nil
    end
    C.nffi_runtime_stats(st.rt, lat_buf)
    local out = {}
    for k = 0, 2 do
        out[k * 2 + 1] = tonumber(lat_buf.lat_sum_ns[k])
        out[k * 2 + 2] = tonumber(lat_buf.lat_count[k])
    end
    -- the pollers' spins in flight: found the next batch, lost their CPU
    out.spins, out.lost = tonumber(lat_buf.spins_in_flight), tonumber(lat_buf.spins_lost)
    -- 0: this runtime's tasks are not instrumented (the build, or the runtime opted out)
    out.every = tonumber(lat_buf.lat_sample_every)
    return out
end

local function lat_means(before, after)
    if not (before and after) or after[2] == before[2] then
        return nil     -- not instrumented, or nothing recorded
    end
    local function mean(k)
        local sum = after[k * 2 + 1] - before[k * 2 + 1]
        local n = after[k * 2 + 2] - before[k * 2 + 2]
        return sum / n / 1000
    end
    return { queue = mean(0), service = mean(1), wakeup = mean(2) }
end

local function quantile(sorted, q)
    return sorted[floor((#sorted - 1) * q) + 1] or 0
end

function _M.run()
    local mode = var.arg_mode
    local make = callers[mode]
    if not make then
        ngx.status = 400
        return ngx.say("unknown mode ", tostring(mode))
    end
    local opts = {
        uds_path = var.arg_uds and ngx.unescape_uri(var.arg_uds),
        pool = var.arg_pool or "nffi_bench",
        poll_spin_us = tonumber(var.arg_poll_spin), wait_spin_us = tonumber(var.arg_wait_spin),
        cfg = var.arg_cfg,
        wake = var.arg_wake,
    }
    local size = tonumber(var.arg_size) or 64
    local conc = tonumber(var.arg_conc) or 1
    local n = tonumber(var.arg_n) or 1000
    local payload = str_rep("a", size)
    -- sized up front: growing it while timed would copy it, a pause in
    -- the middle of every call in flight, and the tail would time the bench
    local lat = table_new(n, 0)
    -- warm up: connect, load, start threads, get traces compiled
    loop(make, opts, payload, 50, {})
    -- the event loop's short poll for sequential calls: the default, or loop_poll µs
    -- (after the warm-up: the worker's wake-up path starts with its first runtime)
    if mode == "nffi" then
        fastwake.set_loop_poll(tonumber(var.arg_loop_poll))
    end

    local sums0 = lat_sums(opts.nffi_state)
    local wake0 = mode == "nffi" and nffi.wake_stats and nffi.wake_stats()
    ngx.update_time()
    local t0 = now_ns()
    local cpu0, wcpu0 = process_cpu_ns(), thread_cpu_ns()
    if conc == 1 then
        loop(make, opts, payload, n, lat)
    else
        in_threads(conc, loop, make, opts, payload, floor(n / conc), lat)
    end
    local elapsed_s = tonumber(now_ns() - t0) / 1e9
    local cpu_us = (process_cpu_ns() - cpu0) / 1e3
    local worker_cpu_us = (thread_cpu_ns() - wcpu0) / 1e3
    local sums1 = lat_sums(opts.nffi_state)
    local means = lat_means(sums0, sums1)
    -- per call: drains from the eventfd, responses the loop's short poll found, signals
    local wake1 = wake0 and nffi.wake_stats()
    local per_call = wake1 and wake1.loop_hits and {
        wakeups = (wake1.fast_wakeups - wake0.fast_wakeups) / #lat,
        loop_hits = (wake1.loop_hits - wake0.loop_hits) / #lat,
        signals = (wake1.signals - wake0.signals) / #lat,
    }
    local instrumented = nffi.instrumented()
    if sums1 then
        instrumented = sums1.every > 0
    end
    table_sort(lat)
    ngx.say(cjson.encode({
        mode = mode, size = size, conc = conc, calls = #lat,
        ops_per_s = #lat / elapsed_s,
        cpu_us_per_call = cpu_us / #lat,
        worker_cpu_us_per_call = worker_cpu_us / #lat,
        p50_us = quantile(lat, 0.5) / 1000,
        p99_us = quantile(lat, 0.99) / 1000,
        -- nffi: whether libnffi says the runtime's tasks were
        instrumented = instrumented,
        -- nffi, instrumented: mean µs a call spent queued, served, waking its waiter
        lat_us = means,
        wake_per_call = per_call,
        spins_per_call = sums1 and {
            found = (sums1.spins - sums0.spins) / #lat, lost = (sums1.lost - sums0.lost) / #lat,
        } or nil,
        -- how nffi's responses reached the waiters in this run
        wake = mode == "nffi" and (opts.wake == "pump" and "pump" or wake_path()) or nil,
        wake_reason = mode == "nffi" and opts.wake ~= "pump" and nffi.wake_stats
            and nffi.wake_stats().reason or nil,
    }))
end

return _M
