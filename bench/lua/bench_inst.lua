-- What instrumentation costs, timed inside one worker: one runtime of the echo
-- library, its instrumentation turned on and off between blocks of calls
-- (nffi_runtime_set_instrumented, while it is idle), in units of 8 blocks,
-- A B B A B A A B, so that a drift or a change of placement in the middle of
-- a request falls on both settings alike. Separate requests a setting each
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
local in_threads = bench_ffi.in_threads
local stats_buf = ffi.new("nffi_stats")

-- The blocks of a unit of 8 (A: instrumented): A B B A B A A B. The two
-- settings' positions have equal sums and equal sums of squares, so a drift
-- over the unit, straight or curved, falls on both alike; each has one block
-- that does not follow a toggle (3 and 7).
local PATTERN = { true, false, false, true, false, true, true, false }
-- The A/A's two sides: blocks 1 3 6 8 against 2 4 5 7. Each holds two blocks
-- of each setting, one of the two that follow no toggle, and positions of
-- equal sums: the cost's contrast with the instrumentation taken out.
local AA_X = { true, false, true, false, false, true, false, true }

-- the sums of a unit's blocks on each side of a split: where side[j], and not
local function sides(xs, side)
    local yes, no = 0, 0
    for j = 1, 8 do
        if side[j] then
            yes = yes + xs[j]
        else
            no = no + xs[j]
        end
    end
    return yes, no
end

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
    in_threads(conc, calls, rt, payload, floor(n / conc))
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
    local blocks = tonumber(var.arg_blocks) or 64
    if blocks % 8 ~= 0 or blocks < 8 then
        ngx.status = 400
        return ngx.say("blocks: a multiple of 8")
    end
    local per_block = floor(n / blocks / conc) * conc
    if per_block == 0 then
        ngx.status = 400
        return ngx.say("n: fewer calls than blocks x conc")
    end
    local rt = assert(nffi.load("nffi_echo", var.arg_cfg, { name = "bench" }))
    local st = runtime.state_of[rt]
    local payload = str_rep("a", size)
    -- warm-up: threads started, traces compiled for both settings
    for _, on in ipairs({ true, false, true, false }) do
        set_inst(st, on)
        block(rt, payload, conc, per_block)
    end

    -- each unit of 8 blocks is one estimate; a request answers the median
    -- over its units, since a block now and then runs at a third of the
    -- speed (the poller moved, the host took the vCPU) and a sum would carry
    -- it whole
    local t = { [true] = 0, [false] = 0 }      -- ns per setting, whole request
    local rec = { [true] = 0, [false] = 0 }    -- latencies recorded during them
    local cost, cost_cpu, aa, aa_cpu = {}, {}, {}, {}
    local every_ok = true
    local ut, uc = {}, {}                      -- this unit's blocks: ns, CPU ns
    for b = 0, blocks - 1 do
        local k = b % 8 + 1
        local on = PATTERN[k]
        set_inst(st, on)
        local r0, inst = recorded(st)
        every_ok = every_ok and inst == on
        local c0, t0 = process_cpu_ns(), now_ns()
        block(rt, payload, conc, per_block)
        local dt = tonumber(now_ns() - t0)
        ut[k], uc[k] = dt, process_cpu_ns() - c0
        t[on] = t[on] + dt
        rec[on] = rec[on] + (recorded(st) - r0)
        if k == 8 then
            local t_on, t_off = sides(ut, PATTERN)
            local c_on, c_off = sides(uc, PATTERN)
            local t_x, t_y = sides(ut, AA_X)
            local c_x, c_y = sides(uc, AA_X)
            local u = #cost + 1
            -- in calls/s: 1 - on's over off's; in CPU a call: on's over off's - 1
            cost[u], cost_cpu[u] = (1 - t_off / t_on) * 100, (c_on / c_off - 1) * 100
            aa[u], aa_cpu[u] = (1 - t_y / t_x) * 100, (c_x / c_y - 1) * 100
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
