-- Fixture for `npm run bench -- tasks` and test/tasks-scale.test.ts: one worker
-- with N tasks pending on a slow runtime, without N HTTP requests.
--   GET /fill?n=N   in the worker that answers: a timer spawns one light thread
--                   holding the runtime's only poller in a gate, then N light
--                   threads that each call pend:work("delay=0;task-<i>") and wait
--                   (in batches, so the worker keeps serving while it fills), and
--                   a ticker that records the longest event-loop stall
--   GET /state      JSON from any worker: fill progress and the ticker's numbers
--   GET /stall/reset  start a new ticker window
--   GET /open       let the filled worker's queue drain (the gate opens)
--   GET /ping       "pong <pid>"
--   GET /gcstep     the VM's own GC steps in the answering worker (one cycle)
local pend_fill = require "pend_fill"
local native = require "nffi.native"
local cjson = require "cjson.safe"

local ngx = ngx
local var = ngx.var
local say = ngx.say
local sleep = ngx.sleep
local timer_at = ngx.timer.at
local worker_pid = ngx.worker.pid
local exiting = ngx.worker.exiting
local ngx_log = ngx.log
local ERR = ngx.ERR
local tonumber = tonumber
local tostring = tostring
local ipairs = ipairs
local assert = assert
local io_open = io.open
local tbl_concat = table.concat
local collectgarbage = collectgarbage

local _M = {}

local DICT = "pending"
local TICK_S = 0.001

local function dict()
    return ngx.shared[DICT]
end

local function now_ns()
    return tonumber(native.lib().nffi_now_ns())
end

-- The gaps between two wake-ups of a 1 ms sleep loop: how long any other
-- request on this worker would have waited. Wall time counts the OS running
-- other processes too; CPU time (this thread's) is the work the event loop did
-- in the gap, whoever did it: a stall of our own. Kept: the longest gap (wall
-- and CPU) and how many gaps held 2-3, 3-5, 5-10, 10-20 and >= 20 ms of CPU.
-- /stall/reset starts a new window.
local CPU_BOUNDS = { 2, 3, 5, 10, 20 }

local function ticker()
    local d = dict()
    local C = native.lib()
    local epoch, max_ms, max_cpu_ms, ticks, hist
    while not exiting() do
        local e = d:get("stall_epoch") or 0
        if e ~= epoch then
            epoch, max_ms, max_cpu_ms, ticks, hist = e, 0, 0, 0, { 0, 0, 0, 0, 0 }
            d:set("stall_max_ms", 0)
            d:set("stall_max_cpu_ms", 0)
            d:set("stall_ticks", 0)
            d:set("stall_cpu_hist", "0 0 0 0 0")
        end
        local t0, c0 = now_ns(), tonumber(C.nffi_thread_cpu_ns())
        sleep(TICK_S)
        local gap = (now_ns() - t0) / 1e6
        local cpu = (tonumber(C.nffi_thread_cpu_ns()) - c0) / 1e6
        ticks = ticks + 1
        if gap > max_ms then
            max_ms = gap
            d:set("stall_max_ms", max_ms)
        end
        if cpu > max_cpu_ms then
            max_cpu_ms = cpu
            d:set("stall_max_cpu_ms", max_cpu_ms)
        end
        local k = 0
        while k < #CPU_BOUNDS and cpu >= CPU_BOUNDS[k + 1] do
            k = k + 1
        end
        if k > 0 then
            hist[k] = hist[k] + 1
            d:set("stall_cpu_hist", tbl_concat(hist, " "))
        end
        if ticks % 100 == 0 then
            d:set("stall_ticks", ticks)
        end
    end
end

local function waiter(rt, i)
    local ok, res, err = rt:work("delay=0;task-" .. i)
    if ok and res == "task-" .. i then
        dict():incr("done", 1, 0)
    else
        dict():incr("failed", 1, 0)
        ngx_log(ERR, "task ", i, " failed: ", tostring(res), " ", tostring(err))
    end
end

local function fill(premature, n)
    if premature then
        return
    end
    local d = dict()
    pend_fill.fill(n, {
        progress = function(i) d:set("spawned", i) end,
        waiter = waiter,
        filled = function()
            local f = io_open("/proc/self/status")
            d:set("rss_kb", tonumber(f:read("*a"):match("VmRSS:%s*(%d+)")))
            f:close()
        end,
        open = function() return d:get("open") end,
    })
end

local routes = {}

routes["/fill"] = function()
    local n = tonumber(var.arg_n) or 100000
    local d = dict()
    if not d:add("pid", worker_pid()) then
        return say(cjson.encode({ error = "already filling in " .. tostring(d:get("pid")) }))
    end
    d:set("n", n)
    assert(timer_at(0, fill, n))
    assert(timer_at(0, ticker))
    say(cjson.encode({ pid = worker_pid(), n = n }))
end

routes["/state"] = function()
    local d = dict()
    local out = {}
    for _, k in ipairs({ "pid", "n", "spawned", "done", "failed", "rss_kb", "stall_max_ms",
                         "stall_max_cpu_ms", "stall_ticks", "stall_cpu_hist" }) do
        out[k] = d:get(k) or 0
    end
    say(cjson.encode(out))
end

routes["/stall/reset"] = function()
    dict():incr("stall_epoch", 1, 0)
    say("ok")
end

routes["/open"] = function()
    dict():set("open", true)
    say("ok")
end

routes["/ping"] = function()
    ngx.header["X-Pid"] = worker_pid()
    say("pong ", worker_pid())
end

-- The VM's own pauses, with no agent work running: over one full GC cycle of
-- single incremental steps, the longest step (CPU ms), the number of steps and
-- how many took 1 ms or more, and 2 ms or more.
routes["/gcstep"] = function()
    local C = native.lib()
    local worst, steps, over1, over2 = 0, 0, 0, 0
    repeat
        local t0 = C.nffi_thread_cpu_ns()
        local done = collectgarbage("step", 0)
        local dt = tonumber(C.nffi_thread_cpu_ns() - t0)
        if dt > worst then
            worst = dt
        end
        if dt >= 1e6 then
            over1 = over1 + 1
        end
        if dt >= 2e6 then
            over2 = over2 + 1
        end
        steps = steps + 1
    until done or steps > 10000000
    say(cjson.encode({ pid = worker_pid(), max_ms = worst / 1e6, steps = steps, over1 = over1,
                       over2 = over2 }))
end

function _M.route()
    local fn = routes[var.uri]
    if not fn then
        return ngx.exit(404)
    end
    fn()
end

return _M
