-- The writer of a session's line and task breakpoints (breakpoints.lua): a
-- light thread woken through a semaphore (bp_hits.lua's signal) or every
-- SERVICE_S, that services the breakpoints (retired ones removed, timeouts,
-- drop reports, the hook kept ours, resync and watching) and ships the queues.
-- State: the semaphore is this module's; the rest it reads from the state
-- table breakpoints.lua passes to init, or reaches through the modules.
local coroutines = require "nffi.inspect.coroutines"
local limits = require "nffi.inspect.limits"
local taskbp = require "nffi.inspect.taskbp"
local semaphore = require "ngx.semaphore"
local hits = require "nffi.inspect.bp_hits"
local hook = require "nffi.inspect.bp_hook"
local watch = require "nffi.inspect.bp_watch"
local bparm = require "nffi.inspect.bp_arm"

local ngx = ngx
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local next = next
local absorb = hits.absorb
local push_ctl = hits.push_ctl
local remove = bparm.remove
local stats = hits.stats

local _M = { _VERSION = "0.1.0" }

local SERVICE_S = 0.25      -- writer wake-up when idle: timeouts, drop reports
-- Events closer together than this go out in one batch: a hit after a quiet
-- spell ships at once, a flood (1,000 hits/s over 8 workers) in at most
-- 1 / BATCH_S sends a second per worker, not one per hit, so the probe reads
-- tens of batches a second instead of a thousand frames.
local BATCH_S = 0.025

local S                     -- the state shared with breakpoints.lua (init)
local wake                  -- semaphore of the current session's writer

function _M.init(state)
    S = state
end

-- Retired bps, timeouts and drop reports; runs in the writer, never in the hook.
local function service()
    local list = hits.take_retired()
    for i = 1, #list do
        remove(list[i][1], list[i][2])
    end
    local now = ngx_now()
    for _, bp in next, S.bps do
        absorb(bp)
    end
    limits.sweep(S.bps, now, remove, push_ctl)
    taskbp.service(now)
    if S.narmed > 0 then
        hook.reclaim()
    end
    if S.gated then
        hook.upkeep()
        watch.tick()
    end
    watch.say_mode()
end

local function writer(send)
    local last, shipped = 0, 0
    while true do
        wake:wait(SERVICE_S)
        stats.writer_loops = stats.writer_loops + 1
        local now = ngx_now()
        if now - shipped < BATCH_S then
            ngx_sleep(BATCH_S - (now - shipped))
            now = ngx_now()
        end
        hits.woken()
        if hits.nretired() > 0 or S.scanned_gen ~= S.scan_gen or now - last >= SERVICE_S then
            last = now
            service()
        end
        if not hits.ship(send) then
            return
        end
        shipped = now
    end
end
coroutines.mark_own(writer, "thread")

-- Session start: the semaphore signal() posts from now on.
function _M.open()
    wake = semaphore.new(0)
    hits.set_wake(wake)
end

-- Spawns the writer light thread; send(docs, n) false ends it.
function _M.spawn(send)
    return ngx.thread.spawn(writer, send)
end

-- Session end: signal() posts nothing.
function _M.close()
    wake = nil
    hits.set_wake(nil)
end

return _M
