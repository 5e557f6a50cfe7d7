-- N tasks pending on a slow runtime without N HTTP requests, shared by the
-- bench fixtures (pending_app.lua, tui_bench.lua): one light thread holds the
-- runtime's only poller in a gate, then N light threads each call
-- pend:work("delay=0;task-<i>") and wait, spawned in batches so the worker
-- keeps serving while it fills. Runs in a timer; returns once the gate opened.
local nffi = require "nffi"

local spawn = ngx.thread.spawn
local sleep = ngx.sleep
local exiting = ngx.worker.exiting
local assert = assert

local _M = {}

-- light threads spawned between two yields of the filling timer
local BATCH = 200
-- the gate holds the poller at most this long, should nobody open it
local GATE_MS = 600000

local function gated(rt)
    rt:work("gate=" .. GATE_MS .. ";held")
end

-- n tasks; hooks: waiter(rt, i) the light thread's function (the fixture's
-- own, so stacks name the fixture), progress(spawned) after each batch and at
-- the end, filled() once all are spawned,
-- open() true when the gate may open (polled every 50 ms; worker exit opens it
-- too: waiters that never resume would hold the exit up).
function _M.fill(n, hooks)
    local rt = assert(nffi.load("nffi_slow", "0", { name = "pend", max_queue = n + 16 }))
    local ctl = assert(nffi.load("nffi_slow", "1", { name = "pendctl" }))
    spawn(gated, rt)
    for i = 1, n do
        spawn(hooks.waiter, rt, i)
        if i % BATCH == 0 then
            hooks.progress(i)
            sleep(0.001)
        end
    end
    hooks.progress(n)
    if hooks.filled then
        hooks.filled()
    end
    while not (hooks.open and hooks.open()) and not exiting() do
        sleep(0.05)
    end
    ctl:work("open;x")
end

return _M
