-- Fixture for `npm run bench -- tui` (bench/tui.ts): tasks pending on a slow
-- runtime in every worker (or in one), and a route whose marked line the
-- bench's breakpoint targets, hit by wrk.
--   init(n, one)   from init_worker_by_lua: a timer spawns one light thread
--                  holding the runtime's only poller in a gate, then n light
--                  threads that each call pend:work("delay=0;task-<i>") and
--                  wait (in batches, so the worker keeps serving while it
--                  fills); one = true: only worker 0 fills, the others hold
--                  their gate task only
--   GET /state     JSON from any worker: every worker's fill progress
--   GET /hit?ms=M  sleeps M ms (so that wrk's connections, not its CPU, set
--                  the rate), then runs the TUI-HIT line once
local pend_fill = require "pend_fill"
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
local assert = assert

local _M = {}

local DICT = "tui_bench"

local function dict()
    return ngx.shared[DICT]
end

local function waiter(rt, i)
    local ok, res, err = rt:work("delay=0;task-" .. i)
    if not (ok and res == "task-" .. i) and not exiting() then
        ngx_log(ERR, "task ", i, " failed: ", tostring(res), " ", tostring(err))
    end
end

local function fill(premature, n)
    if premature then
        return
    end
    local d = dict()
    local key = "spawned:" .. worker_pid()
    pend_fill.fill(n, {
        progress = function(i) d:set(key, i) end,
        waiter = waiter,
    })
end

function _M.init(n, one)
    local d = dict()
    local mine = n
    if one and ngx.worker.id() ~= 0 then
        mine = 0
    end
    local pid = worker_pid()
    d:set("spawned:" .. pid, 0)
    d:set("want:" .. pid, mine)
    d:set("worker:" .. assert(d:incr("workers", 1, 0)), pid)
    -- with no tasks too: every worker has the runtime (and its gate task in flight)
    assert(timer_at(0, fill, mine))
end

local routes = {}

routes["/state"] = function()
    local d = dict()
    local out = {}
    for i = 1, d:get("workers") or 0 do
        local pid = d:get("worker:" .. i)
        out[#out + 1] = { pid = pid, want = d:get("want:" .. pid) or 0,
                          spawned = d:get("spawned:" .. pid) or 0 }
    end
    say(cjson.encode(out))
end

local hits = 0
routes["/hit"] = function()
    sleep((tonumber(var.arg_ms) or 40) / 1000)
    local n = hits + 1
    hits = n -- TUI-HIT
    say(n)
end

function _M.route()
    local fn = routes[var.uri]
    if not fn then
        return ngx.exit(404)
    end
    fn()
end

return _M
