-- nffi-inspect agent: one per worker, loaded with
--   init_worker_by_lua_block { require("nffi.inspect").start() }
-- Dormant it is one timer that lstat()s <run_dir>/<pid>.attach every
-- poll_interval seconds and returns when nothing is there: no hooks, no JIT
-- changes. When a probe writes that file (probe/README.md) the agent checks the
-- run dir and the file without blocking or following links (attach_file.lua),
-- connects to the probe's unix socket and serves it until the session ends,
-- then removes what it installed and goes dormant again.
local native = require "nffi.native"
local json = require "nffi.inspect.json"
local link = require "nffi.inspect.link"
local coroutines = require "nffi.inspect.coroutines"
local breakpoints = require "nffi.inspect.breakpoints"
local attach_file = require "nffi.inspect.attach_file"

local ngx = ngx
local ngx_log = ngx.log
local INFO = ngx.INFO
local WARN = ngx.WARN
local ERR = ngx.ERR
local timer_at = ngx.timer.at
local timer_every = ngx.timer.every
local worker_pid = ngx.worker.pid
local worker_id = ngx.worker.id
local type = type
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local error = error
local math_floor = math.floor
local jit = jit

local _M = { _VERSION = "0.1.0" }

local started = false
local opts
local uid
local run_dir, attach_name, attach_path
local busy = false         -- a session (or its start) is under way
local refused_sig          -- signature of the run dir + attach file last refused
local used_tokens = {}     -- tokens already served: a stale file is not reused

local function refuse(sig, reason)
    refused_sig = sig
    ngx_log(WARN, "[nffi inspect refused ", attach_path, ": ", reason, "]")
end

local function version3(v)
    return math_floor(v / 1000000) .. "." .. math_floor(v / 1000) % 1000 .. "." .. v % 1000
end

local function hello(token)
    local flags = json.array()
    local status = { jit.status() }
    for i = 2, #status do
        flags[#flags + 1] = tostring(status[i])
    end
    return {
        token = token,
        pid = worker_pid(),
        worker_id = worker_id() or -1,
        uid = uid,
        versions = {
            nginx = version3(ngx.config.nginx_version),
            ngx_lua = version3(ngx.config.ngx_lua_version),
            luajit = jit.version,
            agent = _M._VERSION,
        },
        jit = { enabled = status[1] and true or false, flags = flags },
    }
end

-- nil: nothing there; nil, reason: refused (logged once by the caller)
local function read_attach()
    local data, err = attach_file.read(run_dir, attach_name, uid)
    if not data then
        return nil, err
    end
    local doc = json.decode(data)
    if type(doc) ~= "table" or type(doc.socket) ~= "string" or type(doc.token) ~= "string" then
        return nil, "not an attach file (one line of JSON with socket and token)"
    end
    return doc
end

local function end_session()
    -- everything a session installs is undone here: breakpoints (hook, JIT
    -- state, bc handler) and the id map
    breakpoints.reset()
    coroutines.reset()
end

local function session()
    local sig = attach_file.signature(run_dir, attach_path)
    local doc, err = read_attach()
    if not doc then
        if err then
            refuse(sig, err)
        end
        return
    end
    if used_tokens[doc.token] then
        return refuse(sig, "token already used")
    end
    used_tokens[doc.token] = true
    refused_sig = nil

    local reason, cerr = link.run(doc.socket, hello(doc.token), {
        heartbeat_timeout = opts.heartbeat_timeout,
        on_attached = function()
            ngx_log(INFO, "[nffi inspect attached probe=", doc.socket, "]")
        end,
    })
    if not reason then
        end_session()
        refused_sig = sig
        ngx_log(WARN, "[nffi inspect refused ", attach_path, ": ", cerr, "]")
        return
    end
    end_session()
    ngx_log(INFO, "[nffi inspect detached reason=", reason, "]")
end

local function session_timer(premature)
    if premature then
        busy = false
        return
    end
    local ok, err = pcall(session)
    busy = false
    if not ok then
        end_session()
        ngx_log(ERR, "[nffi inspect session error] ", err)
    end
end
coroutines.mark_own(session_timer, "timer")

-- Dormant cost: this, every poll_interval.
local function poll(premature)
    if premature or busy then
        return
    end
    -- lstat only: whatever is there (a FIFO too) is not opened here
    if not attach_file.exists(attach_path) then
        refused_sig = nil
        return
    end
    if refused_sig and attach_file.signature(run_dir, attach_path) == refused_sig then
        return
    end
    busy = true
    local ok, err = timer_at(0, session_timer)
    if not ok then
        busy = false
        if err ~= "process exiting" then
            ngx_log(WARN, "[nffi inspect cannot start session] ", err)
        end
    end
end
coroutines.mark_own(poll, "timer")

local function number_opt(o, name, dflt)
    local v = o[name]
    if v == nil then
        return dflt
    end
    if type(v) ~= "number" or v <= 0 then
        error("nffi.inspect.start: " .. name .. " must be a positive number", 3)
    end
    return v
end

-- Idempotent. opts: run_dir, poll_interval (s), heartbeat_timeout (s).
function _M.start(o)
    if started then
        return true
    end
    o = o or {}
    if type(o) ~= "table" then
        error("nffi.inspect.start: opts must be a table", 2)
    end
    if o.run_dir ~= nil and type(o.run_dir) ~= "string" then
        error("nffi.inspect.start: run_dir must be a string", 2)
    end
    local ok, C = pcall(native.lib)
    if not ok then
        ngx_log(ERR, "[nffi inspect disabled] ", C)
        return nil, C
    end
    uid = tonumber(C.nffi_euid())
    opts = {
        poll_interval = number_opt(o, "poll_interval", 0.1),
        heartbeat_timeout = number_opt(o, "heartbeat_timeout", 5),
    }
    run_dir = o.run_dir or ("/tmp/nffi-inspect." .. uid)
    attach_name = worker_pid() .. ".attach"
    attach_path = run_dir .. "/" .. attach_name
    local tok, err = timer_every(opts.poll_interval, poll)
    if not tok then
        return nil, "cannot start the poll timer: " .. tostring(err)
    end
    started = true
    return true
end

function _M.attach_path()
    return attach_path
end

return _M
