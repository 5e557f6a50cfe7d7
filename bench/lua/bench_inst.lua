-- What instrumentation costs, timed inside one worker: one runtime of the echo
-- library, its instrumentation turned on and off between blocks of calls
-- (nffi_runtime_set_instrumented, while it is idle), blocks interleaved
-- ABBA BAAB ... so that a drift or a change of placement in the middle of a
-- request falls on both settings alike. Separate requests a setting each
-- (~80 ms apart) read a runtime's changes of placement as cost: at one
-- coroutine unpinned, per-instance costs spread -4..9% around ~2%.
local ffi = require "ffi"
local nffi = require "nffi"
local native = require "nffi.native"
local runtime = require "nffi.runtime"
local bench_ffi = require "bench_ffi"
local cjson = require "cjson.safe"

local ngx = ngx
local var = ngx.var
local spawn = ngx.thread.spawn
local wait = ngx.thread.wait
local str_rep = string.rep
local floor = math.floor
local table_sort = table.sort
local tonumber = tonumber
local ipairs = ipairs
local assert = assert
local error = error

local _M = {}

local C = native.lib()
local now_ns = C.nffi_now_ns
local process_cpu_ns = bench_ffi.process_cpu_ns
local stats_buf = ffi.new("nffi_stats")

-- block b of a group of 4: A B B A in even groups, B A A B in odd ones
local PATTERN = { [0] = { true, false, false, true }, [1] = { false, true, true, false } }

local function median(xs)
    table_sort(xs)
    local m = #xs
    return m % 2 == 1 and xs[(m + 1) / 2] or (xs[m / 2] + xs[m / 2 + 1]) / 2
end

local function calls(rt, payload, n)
    for _ = 1, n do
        local ok, res = rt:echo(payload)
        if not ok or res ~= payload then
            error("bad echo of " .. #payload .. " bytes")
        end
    end
end

local function block(rt, payload, conc, n)
    if conc == 1 then
        return calls(rt, payload, n)
    end
    local threads = {}
    for i = 1, conc do
        threads[i] = spawn(calls, rt, payload, floor(n / conc))
    end
    for i = 1, conc do
        local ok, err = wait(threads[i])
        if not ok then
            error(err)
        end
    end
end

-- tasks whose latencies the runtime recorded so far, and whether it is instrumented
local function recorded(st)
    C.nffi_runtime_stats(st.rt, stats_buf)
    return tonumber(stats_buf.lat_samples), tonumber(stats_buf.lat_sample_every) > 0
end

local function set_inst(st, on)
    if C.nffi_runtime_set_instrumented(st.rt, on and 1 or 0) ~= 0 then
        error("could not set the runtime's instrumentation: tasks live")
    end
end

function _M.run()
    local size = tonumber(var.arg_size) or 64
    local conc = tonumber(var.arg_conc) or 1
    local n = tonumber(var.arg_n) or 20000
    local blocks = tonumber(var.arg_blocks) or 32
    if blocks % 4 ~= 0 or blocks < 4 then
        ngx.status = 400
        return ngx.say("blocks: a multiple of 4")
    end
    local per_block = floor(n / blocks / conc) * conc
    local rt = assert(nffi.load("nffi_echo", var.arg_cfg, { name = "bench" }))
    local st = runtime.state_of[rt]
    local payload = str_rep("a", size)
    -- warm-up: threads started, traces compiled for both settings
    for _, on in ipairs({ true, false, true, false }) do
        set_inst(st, on)
        block(rt, payload, conc, per_block)
    end

    -- each group of four blocks is one estimate (two blocks of each setting,
    -- ABBA or BAAB); a request answers the median over its groups, since a
    -- block now and then runs at a third of the speed (the poller moved, the
    -- host took the vCPU) and a sum would carry it whole
    local t = { [true] = 0, [false] = 0 }      -- ns per setting, whole request
    local rec = { [true] = 0, [false] = 0 }    -- latencies recorded during them
    local cost, cost_cpu, aa, aa_cpu = {}, {}, {}, {}
    local every_ok = true
    local gt, gc = {}, {}                      -- this group's blocks: ns, CPU ns
    for b = 0, blocks - 1 do
        local on = PATTERN[floor(b / 4) % 2][b % 4 + 1]
        set_inst(st, on)
        local r0, inst = recorded(st)
        every_ok = every_ok and inst == on
        local c0, t0 = process_cpu_ns(), now_ns()
        block(rt, payload, conc, per_block)
        local dt = tonumber(now_ns() - t0)
        gt[b % 4 + 1], gc[b % 4 + 1] = dt, process_cpu_ns() - c0
        t[on] = t[on] + dt
        rec[on] = rec[on] + (recorded(st) - r0)
        if b % 4 == 3 then
            -- blocks 1 and 4 of an ABBA group are on; 2 and 3 of a BAAB one
            local outer = PATTERN[floor(b / 4) % 2][1]
            local t_out, t_in = gt[1] + gt[4], gt[2] + gt[3]
            local c_out, c_in = gc[1] + gc[4], gc[2] + gc[3]
            local t_on, t_off = outer and t_out or t_in, outer and t_in or t_out
            local c_on, c_off = outer and c_out or c_in, outer and c_in or c_out
            local g = #cost + 1
            -- in calls/s: 1 - on's over off's; in CPU a call: on's over off's - 1
            cost[g], cost_cpu[g] = (1 - t_off / t_on) * 100, (c_on / c_off - 1) * 100
            -- the A/A: blocks 1-2 against 3-4, one of each setting in both
            aa[g] = (1 - (gt[3] + gt[4]) / (gt[1] + gt[2])) * 100
            aa_cpu[g] = ((gc[1] + gc[2]) / (gc[3] + gc[4]) - 1) * 100
        end
    end
    set_inst(st, true)
    local calls_each = per_block * blocks / 2
    ngx.say(cjson.encode({
        size = size, conc = conc, blocks = blocks, calls = per_block * blocks,
        ops_on = calls_each / t[true] * 1e9, ops_off = calls_each / t[false] * 1e9,
        cost_pct = median(cost), cost_cpu_pct = median(cost_cpu),
        aa_pct = median(aa), aa_cpu_pct = median(aa_cpu),
        -- what the runtime says it did: latencies recorded while on, none while off
        recorded_on = rec[true], recorded_off = rec[false], settings_held = every_ok,
    }))
end

return _M
