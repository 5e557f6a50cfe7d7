-- Publishes this worker's nffi.stats() into a lua_shared_dict on a timer, so
-- that any worker can answer for all of them (an HTTP stats endpoint lands on
-- one worker). Optional: nothing else depends on it.
--
--   lua_shared_dict nffi_stats 1m;
--   init_worker_by_lua_block { require("nffi.stats_share").start("nffi_stats", 1) }
local cjson = require "cjson.safe"
local nffi = require "nffi"

local ngx = ngx
local shared = ngx.shared
local worker_pid = ngx.worker.pid
local timer_every = ngx.timer.every
local now = ngx.now
local ipairs = ipairs
local pcall = pcall

local _M = { _VERSION = "0.1.0" }

local function publish(dict_name, ttl)
    local dict = shared[dict_name]
    if not dict then
        return nil, "no lua_shared_dict " .. dict_name
    end
    local doc = cjson.encode({ pid = worker_pid(), time = now(), runtimes = nffi.stats() })
    return dict:set("worker:" .. worker_pid(), doc, ttl)
end
_M.publish = publish

function _M.start(dict_name, interval_s)
    if not shared[dict_name] then
        return nil, "no lua_shared_dict " .. dict_name
    end
    interval_s = interval_s or 1
    local ttl = interval_s * 3
    return timer_every(interval_s, function(premature)
        if not premature then
            pcall(publish, dict_name, ttl)
        end
    end)
end

-- Every worker's latest stats, freshest publication first; this worker's own
-- entry is refreshed before reading.
function _M.collect(dict_name)
    publish(dict_name, 3)
    local dict = shared[dict_name]
    local out = {}
    for _, key in ipairs(dict:get_keys(0)) do
        local doc = cjson.decode(dict:get(key) or "null")
        if doc then
            out[#out + 1] = doc
        end
    end
    return out
end

return _M
