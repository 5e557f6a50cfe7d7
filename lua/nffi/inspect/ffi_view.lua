-- FFI.getRuntimes / FFI.getTasks: the nffi binding's runtimes and their live
-- tasks, oldest first across runtimes, each waiting coroutine named by the same
-- id Lua.getCoroutines gives it. One answer holds at most MAX_MAX tasks (about
-- 1 MB of JSON); a client pages on with after_id. Every step is bounded: tasks
-- are copied PAGE at a time from where the last copy stopped (libnffi keeps
-- the place) and counted COUNT_VISIT at a time, with the budget checked after
-- each task and each count.
local json = require "nffi.inspect.json"
local coroutines = require "nffi.inspect.coroutines"
local plumbing = require "nffi.inspect.plumbing"
local request_of = require("nffi.inspect.coroutines_request").request_of
local walk = require "nffi.inspect.coroutines_walk"

local type = type
local package = package
local math_min = math.min
local math_floor = math.floor
local array = json.array

local _M = { _VERSION = "0.1.0" }

local PAGE = 64
local COUNT_VISIT = 4096
local DEFAULT_MAX = 1000
local MAX_MAX = 1000
local TASK_FRAMES = 3

-- Only a binding the application loaded: the agent never loads runtimes.
local function binding()
    local nffi = package.loaded["nffi"]
    if type(nffi) == "table" and nffi.stats and nffi.tasks_since then
        return nffi
    end
    return nil
end

function _M.get_runtimes()
    local nffi = binding()
    return { runtimes = array(nffi and nffi.stats() or {}) }
end

-- skip: plumbing.lua's matcher (frames from the waiter's application code).
-- An abandoned task's waiter timed out and went on (it may serve another
-- request by now): its request is not the task's. A request is read only for
-- a coroutine known to be anchored (coroutines_request.lua says why): a waiter
-- no walk has seen makes a request with skip (a view that wants the waiter's
-- code and request) index the anchored ones once (st).
local function task_out(nffi, t, skip, b, st)
    local out = {
        id = t.id, runtime = t.runtime, method = t.method, state = t.state,
        age_ms = t.age_ms, enqueued_ms = t.enqueued_ms,
        req_len = t.req_len, req_preview = t.req_preview,
    }
    local co = t.waiter and t.waiter ~= 0 and nffi.coroutine_of(t.waiter)
    if co then
        local frames, skipped = coroutines.frames_of(co, TASK_FRAMES, b, skip)
        local c = { id = coroutines.id_of(co), frames = frames }
        if skipped > 0 then
            c.skipped = skipped
        end
        if t.state ~= "abandoned" then
            if skip and not st.indexed and not walk.indexed(co) then
                st.indexed = true
                walk.index_anchored(b)
            end
            -- nil: serving() checks the coroutine has a frame now (a thread that ended and
            -- was cached for reuse keeps a dangling request pointer: never followed)
            c.request = request_of(co, nil, b)
        end
        out.coroutine = c
    end
    return out
end

-- A whole number a double holds exactly (never NaN or an infinity).
local function whole(v)
    return type(v) == "number" and v >= 0 and v <= 9007199254740991 and v == math_floor(v)
end

-- Matching tasks in the worker after `after`, counted a bounded stretch at a
-- time; with `any`, only until a stretch has one (is there one more?).
local function count(nffi, enq_before, b, after, any)
    local total = 0
    repeat
        local n, nxt = nffi.tasks_count(after, enq_before, COUNT_VISIT)
        total = total + n
        if any and total > 0 then
            break
        end
        after = nxt
        b:check()
    until not after
    return total
end

-- params: older_than_ms, max (default and limit 1000), after_id (go on after
-- this task), total (false: skip the count; later pages need none), skip
-- (globs: each waiter's frames from its application code, Lua.getCoroutines').
function _M.get_tasks(params, b)
    local older = params.older_than_ms
    if older ~= nil and (type(older) ~= "number" or not (older >= 0 and older <= 1e12)) then
        return nil, "older_than_ms must be a number from 0 to 1e12"
    end
    local max = params.max
    if max == nil then
        max = DEFAULT_MAX
    end
    if not whole(max) then
        return nil, "max must be a non-negative integer"
    end
    max = math_min(max, MAX_MAX)
    local after = params.after_id
    if after == nil then
        after = 0
    end
    if not whole(after) then
        return nil, "after_id must be a non-negative integer"
    end
    local skip, serr = plumbing.from_params(params)
    if serr then
        return nil, serr
    end
    local tasks = array()
    local res = { tasks = tasks }
    local st = { indexed = false }
    local nffi = binding()
    if not nffi then
        res.total = 0
        return res
    end
    -- "older than" is fixed when the request starts, not slice by slice
    local enq_before = older and nffi.now_ns() - older * 1e6 or nil
    local total = params.total ~= false and count(nffi, enq_before, b, 0) or nil
    local n = 0
    while true do
        if n == max then
            -- one more that matches means this answer is cut short
            res.truncated = count(nffi, enq_before, b, after, true) > 0 or nil
            break
        end
        local page, last, visited = nffi.tasks_since(after, math_min(PAGE, max - n), enq_before)
        for i = 1, #page do
            n = n + 1
            tasks[n] = task_out(nffi, page[i], skip, b, st)
            b:check()  -- each task reads a stack: read the clock every time
        end
        -- past the tasks left out too (no stamp), or a page of them would be read again
        after = visited
        if last then
            break
        end
        b:check()
    end
    if total then
        -- tasks enqueued while we listed may make the page longer than the count
        res.total = total < n and n or total
    end
    return res
end

return _M
