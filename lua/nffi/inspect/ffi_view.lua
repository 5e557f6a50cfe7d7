-- FFI.getRuntimes / FFI.getTasks: the nffi binding's runtimes and their live
-- tasks, paged 256 at a time with a yield between pages, each waiting
-- coroutine named by the same id Lua.getCoroutines gives it.
local json = require "nffi.inspect.json"
local coroutines = require "nffi.inspect.coroutines"

local type = type
local ipairs = ipairs
local package = package
local array = json.array

local _M = { _VERSION = "0.1.0" }

local PAGE = 256
local DEFAULT_MAX = 1000
local MAX_MAX = 100000
local TASK_FRAMES = 3

-- Only a binding the application loaded: the agent never loads runtimes.
local function binding()
    local nffi = package.loaded["nffi"]
    if type(nffi) == "table" and nffi.stats then
        return nffi
    end
    return nil
end

function _M.get_runtimes()
    local nffi = binding()
    return { runtimes = array(nffi and nffi.stats() or {}) }
end

local function task_out(nffi, t)
    local out = {
        id = t.id, runtime = t.runtime, method = t.method, state = t.state,
        age_ms = t.age_ms, req_len = t.req_len, req_preview = t.req_preview,
    }
    local co = t.waiter and t.waiter ~= 0 and nffi.coroutine_of(t.waiter)
    if co then
        out.coroutine = { id = coroutines.id_of(co),
                          frames = coroutines.frames_of(co, TASK_FRAMES) }
    end
    return out
end

function _M.get_tasks(params, b)
    local older = params.older_than_ms
    if older ~= nil and type(older) ~= "number" then
        return nil, "older_than_ms must be a number"
    end
    local max = params.max
    if max == nil then
        max = DEFAULT_MAX
    end
    if type(max) ~= "number" or max < 0 then
        return nil, "max must be a non-negative integer"
    end
    if max > MAX_MAX then
        max = MAX_MAX
    end
    local tasks = array()
    local res = { tasks = tasks }
    local nffi = binding()
    if not nffi then
        return res
    end
    local n = 0
    for _, rt in ipairs(nffi.runtimes()) do
        local after = 0
        while rt.started do
            local page = nffi.tasks_page(rt.name, after, PAGE)
            if not page or #page == 0 then
                break
            end
            for _, t in ipairs(page) do
                if older == nil or (t.age_ms and t.age_ms >= older) then
                    if n >= max then
                        res.truncated = true
                        return res
                    end
                    n = n + 1
                    tasks[n] = task_out(nffi, t)
                end
            end
            after = page[#page].id
            b:check()
        end
    end
    return res
end

return _M
