-- Task breakpoints on the FFI queue: `ffi:RUNTIME.METHOD` (either part `*`
-- or a glob). The nffi binding calls one hook (nffi._set_task_hook) in the
-- calling coroutine when a task is enqueued and when its coroutine resumes;
-- it is nil while no task breakpoint is armed, so the binding pays one nil
-- test per phase. A hit snapshots the caller of rt:method(...) (frames, its
-- locals and upvalues) with a `task` part (enqueue: req_len/req_preview;
-- resume: ok, rc, err, res_len/res_preview, latency_ms). Conditions and log
-- templates are cond.lua's (same checks, same read-only environment); they see
-- `phase`, `runtime`, `method`, `req`, and on resume `ok`, `res`, `rc`, `err`,
-- `latency` (ms: queue, service, wakeup, total), then the caller's locals and
-- upvalues. One that names a resume-only variable fires on resume only. Hits
-- go into the line breakpoints' ring (bp_hits.lua's emit, control and
-- signal, which breakpoints.lua passes through init) with the same rate,
-- count, timeout and drop rules (limits.lua) and the same snapshot
-- (snapshot.lua).
local cond = require "nffi.inspect.cond"
local limits = require "nffi.inspect.limits"
local snapshot = require "nffi.inspect.snapshot"
local json = require "nffi.inspect.json"

local ngx = ngx
local ngx_now = ngx.now
local ngx_log = ngx.log
local INFO = ngx.INFO
local worker_pid = ngx.worker.pid
local debug_getinfo = debug.getinfo
local package = package
local type = type
local rawequal = rawequal
local next = next
local pcall = pcall
local tostring = tostring
local math_floor = math.floor
local str_sub = string.sub
local str_find = string.find
local str_gsub = string.gsub
local str_gmatch = string.gmatch
local NIL = cond.NIL
local frame_vars = snapshot.frame_vars
local capture_frame = snapshot.capture_frame
local hit_frames = snapshot.frames
local request_of = snapshot.request_of
local count_hit = limits.count_hit
local refill = limits.refill
local drop = limits.drop
local report_removed = limits.report_removed

local _M = { _VERSION = "0.1.0" }

local PREFIX = "ffi:"
local PREVIEW_BYTES = 256
local MAX_CALLER_SEARCH = 8
local CACHE_MAX = 4096
local RESUME_NAMES = { ok = true, res = true, rc = true, err = true, latency = true }

local bps = {}              -- id -> task bp
local nlive = 0             -- bps in bps (armed or pending)
local cache, ncache = {}, 0 -- runtime -> method -> list of bps (false: none)
local hooked                -- the binding whose hook is ours
local engine                -- bp_hits.lua's emit, control, signal (breakpoints.lua's init)
local stats = { calls = 0, hits = 0 }

function _M.init(e)
    engine = e
end

function _M.is_task(url)
    return type(url) == "string" and str_sub(url, 1, #PREFIX) == PREFIX
end

function _M.has(id)
    return bps[id] ~= nil
end

-- Only a binding the application loaded: the agent never loads runtimes.
local function binding()
    local nffi = package.loaded["nffi"]
    if type(nffi) == "table" and type(nffi._set_task_hook) == "function" then
        return nffi
    end
    return nil
end

-- "*" -> true (any), "abc" -> "abc" (exact), "a*c" -> { pattern }.
local function glob(p)
    if p == "*" then
        return true
    end
    if not str_find(p, "*", 1, true) then
        return p
    end
    local pat = str_gsub(p, "[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0")
    return { "^" .. str_gsub(pat, "%*", ".*") .. "$" }
end

local function glob_match(g, s)
    if g == true then
        return true
    end
    if type(g) == "string" then
        return g == s
    end
    return str_find(s, g[1]) ~= nil
end

-- Names a condition or template reads that only the resume phase has.
local function reads_resume(expr)
    local toks = cond.tokenize(expr)
    if not toks then
        return false
    end
    for i = 1, #toks do
        local t, prev = toks[i], toks[i - 1]
        if t[1] == "name" and RESUME_NAMES[t[2]]
           and not (prev and prev[1] == "op" and prev[2] == ".") then
            return true
        end
    end
    return false
end

local function describe(bp)
    return { id = bp.id, spec = bp.spec, state = bp.state, hits = bp.hits,
             dropped = bp.dropped }
end
_M.describe = describe

-- Hook ------------------------------------------------------------------------

local on_task

local function install()
    local nffi = binding()
    if nlive > 0 and nffi then
        if hooked ~= nffi or nffi._task_hook() ~= on_task then
            nffi._set_task_hook(on_task)
            hooked = nffi
        end
    elseif hooked then
        if hooked._task_hook() == on_task then
            hooked._set_task_hook(nil)
        end
        hooked = nil
    end
    return hooked ~= nil
end

local function lookup(runtime, method)
    local m = cache[runtime]
    if not m then
        if ncache >= CACHE_MAX then
            cache, ncache = {}, 0
        end
        m = {}
        cache[runtime] = m
    end
    local list = m[method]
    if list == nil then
        list = false
        for _, bp in next, bps do
            if glob_match(bp.rt, runtime) and glob_match(bp.method, method) then
                list = list or {}
                list[#list + 1] = bp
            end
        end
        m[method] = list
        ncache = ncache + 1
    end
    return list
end

-- Removes bp; queues dropped/removed events when reason is given.
local function remove(bp, reason)
    if bps[bp.id] ~= bp then
        return
    end
    bps[bp.id] = nil
    nlive = nlive - 1
    bp.dead = reason or "deleted"
    bp.state = "disabled"
    cache, ncache = {}, 0
    install()
    if reason and engine then
        report_removed(bp, reason, engine.control)
    end
end

local function task_part(ev)
    if ev.phase == "enqueue" then
        return { phase = "enqueue", runtime = ev.runtime, method = ev.method,
                 req_len = #ev.req, req_preview = str_sub(ev.req, 1, PREVIEW_BYTES) }
    end
    local res = ev.res
    return { phase = "resume", runtime = ev.runtime, method = ev.method, ok = ev.ok,
             rc = ev.rc, err = ev.err ~= nil and tostring(ev.err) or nil,
             res_len = type(res) == "string" and #res or nil,
             res_preview = type(res) == "string" and str_sub(res, 1, PREVIEW_BYTES) or nil,
             latency_ms = ev.latency }
end

-- The variables a condition sees: the task's, then the caller's locals+upvalues.
local function cond_vars(ev, level)
    local vars = { phase = ev.phase, runtime = ev.runtime, method = ev.method, req = ev.req,
                   ok = NIL, res = NIL, rc = NIL, err = NIL, latency = NIL }
    if ev.phase == "resume" then
        vars.ok = ev.ok
        for k in next, RESUME_NAMES do
            if k ~= "ok" then
                local v = ev[k]
                vars[k] = rawequal(v, nil) and NIL or v
            end
        end
    end
    local caller = {}
    if level then
        frame_vars(level + 1, caller, caller)  -- cond_vars sees it at level
    end
    return vars, caller
end

-- level: of the caller of rt:method(...) (nil: not found)
local function hit_one(bp, ev, now, level)
    if bp.dead or (bp.resume_only and ev.phase ~= "resume") then
        return
    end
    if now >= bp.expires then
        return remove(bp, "timeout")
    end
    if bp.cond or bp.log then
        if not ev.vars then
            ev.vars, ev.caller = cond_vars(ev, level and level + 1)
        end
        cond.set_frame(ev.vars, ev.caller)
    end
    if bp.cond then
        local ok, res = pcall(bp.cond)
        if not ok then
            engine.control({ method = "Debugger.error", params = { id = bp.id,
                             message = "condition: " .. tostring(res) } })
            return remove(bp, "error")
        end
        if not res then
            return
        end
    end
    stats.hits = stats.hits + 1
    local last = count_hit(bp)
    local tokens = refill(bp, now)  -- rate: limits.lua's token bucket
    local params
    if tokens >= 1 then
        -- the caller is level from here, level + 1 from a callee
        local frames = hit_frames(level and level + 1)
        local top = frames[1]
        params = { id = bp.id, pid = worker_pid(), time = now,
                   source = top and top.source or (PREFIX .. ev.runtime .. "." .. ev.method),
                   line = top and top.line or 0, frames = frames, request = request_of(),
                   task = task_part(ev) }
        if bp.log then
            local ok, msg = pcall(cond.render, bp.log)
            if not ok then
                engine.control({ method = "Debugger.error", params = { id = bp.id,
                                 message = "log: " .. tostring(msg) } })
                return remove(bp, "error")
            end
            params.message = msg
        else
            -- no varargs: they would be the caller's, not the task's
            capture_frame(params, level and level + 1, false)
        end
    end
    if params and engine.emit({ method = "Debugger.hit", params = params }) then
        bp.tokens = tokens - 1
    else
        drop(bp, tokens)
    end
    if last then
        remove(bp, "count")
    end
end

local call_fn   -- the binding's call(): its caller's caller is rt:method's caller

-- The binding's hook: runs in the calling coroutine under the binding's pcall.
on_task = function(phase, runtime, method, req, ok, res, rc, err, latency)
    local list = lookup(runtime, method)
    if not list then
        return
    end
    stats.calls = stats.calls + 1
    local now = ngx_now()
    -- level of the caller of rt:method(...) as seen from here: 1 is this
    -- function; the binding's call() sits below a pcall frame
    local level
    if not call_fn then
        call_fn = hooked and hooked._call
    end
    for l = 2, MAX_CALLER_SEARCH do
        local info = debug_getinfo(l, "f")
        if not info then
            break
        end
        if info.func == call_fn then
            level = l + 1
            break
        end
    end
    local ev = { phase = phase, runtime = runtime, method = method, req = req, ok = ok,
                 res = res, rc = rc, err = err, latency = latency }
    for i = 1, #list do
        -- hit_one adds one level
        hit_one(list[i], ev, now, level and level + 1)
    end
    cond.set_frame(NIL, NIL)
    if engine then
        engine.signal()
    end
end

-- Handlers ----------------------------------------------------------------------

-- A task breakpoint from spec (not registered yet), or nil, reason.
function _M.compile(spec)
    local target = str_sub(spec.url, #PREFIX + 1)
    local dot = str_find(target, "%.[^%.]*$")
    local rt_s = dot and str_sub(target, 1, dot - 1)
    local m_s = dot and str_sub(target, dot + 1)
    if not dot or rt_s == "" or m_s == "" then
        return nil, "invalid task breakpoint '" .. spec.url
                    .. "' (expected ffi:RUNTIME.METHOD, either part may be *)"
    end
    if spec.line ~= nil then
        return nil, "a task breakpoint (ffi:RUNTIME.METHOD) takes no line"
    end
    local bp = { spec = spec, state = "pending", hits = 0, dropped = 0, unreported = 0,
                 rt = glob(rt_s), method = glob(m_s) }
    local ok, err = limits.parse(bp, spec)
    if not ok then
        return nil, err
    end
    -- both compiled (parse checked them): which names they read
    if bp.cond then
        bp.resume_only = reads_resume(spec.condition)
    end
    if bp.log then
        for expr in str_gmatch(spec.log, "{(.-)}") do
            bp.resume_only = bp.resume_only or reads_resume(expr)
        end
    end
    return bp
end

-- The names of the runtimes this worker has loaded (the binding's, when the
-- application loaded it), and whether any of them matches the glob g.
local function loaded_runtimes(g)
    local names, matched = json.array(), false
    local nffi = binding()
    local ok, list = pcall(function() return nffi and nffi.runtimes() end)
    if ok and type(list) == "table" then
        for i = 1, #list do
            local r = list[i]
            local name = type(r) == "table" and not r.unloaded and r.name
            if type(name) == "string" then
                names[#names + 1] = name
                matched = matched or glob_match(g, name)
            end
        end
    end
    return names, matched
end

-- Registers a compiled bp under id (replacing a task bp with that id); arms it
-- when the binding is loaded, else it stays pending until service() sees it.
function _M.add(bp, id)
    if type(id) ~= "number" or id ~= math_floor(id) then
        return nil, "id must be an integer"
    end
    if bps[id] then
        remove(bps[id], nil)
    end
    bp.id = id
    bps[id] = bp
    nlive = nlive + 1
    cache, ncache = {}, 0
    if install() then
        bp.state = "armed"
        engine.control({ method = "Debugger.armed", params = { breakpoint = describe(bp) } })
        engine.signal()
        ngx_log(INFO, "[nffi bp ", id, " armed ", bp.spec.url, "]")
    end
    local res = { breakpoint = describe(bp) }
    -- RUNTIME names none of the runtimes loaded here (yet): say which are
    local names, matched = loaded_runtimes(bp.rt)
    if not matched then
        res.runtimes = names
    end
    return res
end

-- Debugger.removeBreakpoint for a task bp id.
function _M.remove(id, reason)
    local bp = bps[id]
    if not bp then
        return false
    end
    remove(bp, reason)
    return true
end

function _M.list(out)
    for _, bp in next, bps do
        out[#out + 1] = describe(bp)
    end
    return out
end

function _M.get_stats()
    local nffi = binding()
    return { armed = nlive, calls = stats.calls, hits = stats.hits,
             hook = nffi ~= nil and nffi._task_hook() ~= nil }
end

-- From the line engine's writer: timeouts, drop reports, pending bps to arm.
function _M.service(now)
    if nlive == 0 then
        return
    end
    limits.sweep(bps, now, remove, engine.control)
    if nlive > 0 and install() then
        for _, bp in next, bps do
            if bp.state == "pending" then
                bp.state = "armed"
                engine.control({ method = "Debugger.armed",
                                 params = { breakpoint = describe(bp) } })
                ngx_log(INFO, "[nffi bp ", bp.id, " armed ", bp.spec.url, "]")
            end
        end
    end
end

-- Session end: every task bp gone, the binding's hook back to nil.
function _M.reset()
    for _, bp in next, bps do
        remove(bp, nil)
    end
    bps, nlive = {}, 0
    cache, ncache = {}, 0
    install()
end

return _M
