-- Arming line breakpoints (breakpoints.lua) and taking them off: a FILE whose
-- chunk is loaded is armed now (its line resolved, JIT off and traces cut,
-- indexed, the hook on); one with no loaded chunk is pending, and a jit.attach
-- "bc" handler arms it when its chunk is compiled, before that chunk runs.
-- State: this module keeps the counts of armed and pending breakpoints and
-- takes them out of the set (S.bps, S.narmed, S.npending of the state table
-- breakpoints.lua passes to init; breakpoints.lua puts them in the set).
local finder = require "nffi.inspect.finder"
local cond = require "nffi.inspect.cond"
local scope = require "nffi.inspect.cond_scope"
local jitctl = require "nffi.inspect.jitctl"
local limits = require "nffi.inspect.limits"
local vmevents = require "nffi.inspect.vmevents"
local jutil = require "jit.util"
local hits = require "nffi.inspect.bp_hits"
local hook = require "nffi.inspect.bp_hook"
local watch = require "nffi.inspect.bp_watch"

local ngx = ngx
local ngx_now = ngx.now
local ngx_log = ngx.log
local WARN = ngx.WARN
local INFO = ngx.INFO
local funcinfo = jutil.funcinfo
local debug_gethook = debug.gethook
local next = next
local pcall = pcall
local report_removed = limits.report_removed
local push_ctl = hits.push_ctl
local signal = hits.signal
local describe = hits.describe
local unmute = hits.unmute
local index = hits.index
local unindex = hits.unindex
local hook_ours = hook.hook_ours
local set_hook = hook.set_hook
local retarget = hook.retarget
local mode_of = watch.mode_of

local _M = { _VERSION = "0.1.0" }

local S                     -- the state shared with breakpoints.lua (init)
local bc_on = false

function _M.init(state)
    S = state
end

local bc_handler

local function set_bc(on)
    if on and not bc_on then
        bc_on = true
        vmevents.attach("bc", bc_handler)
    elseif not on and bc_on then
        bc_on = false
        vmevents.detach("bc", bc_handler)
    end
end

-- Arms bp at s (a finder source entry). b: a budget when traces may hold
-- it (they are cut, yielding between slices), nil for code not run yet.
-- The line, or nil, why (and true when the spec itself is wrong for that
-- line: a name its condition or template reads is not visible there).
local function arm(bp, s, b)
    local line, objs = finder.resolve_line(s, bp.spec.line, b)
    if not line then
        return nil, "no code at or after line " .. bp.spec.line .. " in "
                    .. finder.name_of(s.source)
    end
    if b and S.bps[bp.id] ~= bp then  -- removed, or the session ended, while it read lines
        return nil, "breakpoint removed while it was being armed"
    end
    -- the names its condition and template read, against what the line sees
    -- (cond_scope.lua); refused now rather than at the first hit
    if bp.cond or bp.log then
        local serr = scope.check(bp.cond and cond.names(bp.cond) or {},
                                 bp.log and cond.names(bp.log) or {},
                                 objs, line, bp.spec.url .. ":" .. line, b)
        if b and S.bps[bp.id] ~= bp then
            return nil, "breakpoint removed while it was being armed"
        end
        if serr then
            return nil, serr, true
        end
    end
    local h = debug_gethook()
    if h ~= nil and not hook_ours() then
        return nil, "another debug hook is installed in this worker"
    end
    -- JIT work first: the trace scan runs before the hook slows this code down
    jitctl.watch()
    jitctl.off(objs)
    if b then
        jitctl.flush_covering(objs, b)
        if S.bps[bp.id] ~= bp then  -- removed, or the session ended, meanwhile
            jitctl.release(objs)
            return nil, "breakpoint removed while it was being armed"
        end
    end
    local ok, err = set_hook(true)
    if not ok then
        jitctl.release(objs)
        return nil, err
    end
    if bp.state == "pending" then
        S.npending = S.npending - 1
    end
    bp.source, bp.line, bp.objs, bp.state = s.source, line, objs, "armed"
    bp.t_last = ngx_now()
    S.narmed = S.narmed + 1
    index(bp)
    retarget(true)
    return line
end

local function stop_if_idle()
    if S.npending == 0 then
        set_bc(false)
    end
    if S.narmed == 0 then
        set_hook(false)
        jitctl.restore_all()
    end
end

-- Removes bp for good; queues the removed event when reason is given.
local function remove(bp, reason)
    if S.bps[bp.id] ~= bp then
        return
    end
    S.bps[bp.id] = nil
    bp.dead = bp.dead or reason or "deleted"
    unmute(bp)
    if bp.state == "armed" then
        unindex(bp)
        jitctl.release(bp.objs)
        S.narmed = S.narmed - 1
    elseif bp.state == "pending" then
        S.npending = S.npending - 1
    end
    bp.state = "disabled"
    stop_if_idle()
    retarget(false)
    if reason then
        report_removed(bp, reason, push_ctl)
    end
end

-- Code compiled while breakpoints are pending: prototypes arrive innermost
-- first, the chunk's main function last; the chunk is armed when its main
-- function arrives, before any of it has run.
bc_handler = function(proto)
    local ok, err = pcall(function()
        local info = funcinfo(proto)
        local src = info.source
        if not src then
            return
        end
        for _, bp in next, S.bps do
            if bp.state == "pending" and finder.matches(bp.spec.url, src) then
                local acc = bp.acc
                if not acc or acc.source ~= src then
                    acc = { source = src, protos = {} }
                    bp.acc = acc
                end
                acc.protos[#acc.protos + 1] = { obj = proto, linedefined = info.linedefined,
                                                lastlinedefined = info.lastlinedefined,
                                                bytecodes = info.bytecodes }
                if info.linedefined == 0 then
                    bp.acc = nil
                    local line, aerr, bad_spec = arm(bp, acc, nil)
                    if line then
                        push_ctl({ method = "Debugger.armed",
                                   params = { breakpoint = describe(bp), mode = mode_of(true),
                                              moved_from = line ~= bp.spec.line
                                                           and bp.spec.line or nil } })
                        ngx_log(INFO, "[nffi bp ", bp.id, " armed ", finder.name_of(src), ":",
                                line, "]")
                    else
                        push_ctl({ method = "Debugger.error", params = { id = bp.id,
                                   message = aerr } })
                        if bad_spec then
                            -- it would fail at every hit: off this worker now
                            remove(bp, "error")
                        end
                    end
                    signal()
                end
            end
        end
    end)
    if not ok then
        ngx_log(WARN, "[nffi bp bc handler error] ", err)
    end
end

-- Task breakpoints (ffi:RUNTIME.METHOD, taskbp.lua) share the ring, the

-- A bp whose FILE has no loaded chunk: pending until bc_handler arms it.
function _M.pend(bp)
    S.bps[bp.id] = bp
    bp.state = "pending"
    S.npending = S.npending + 1
    set_bc(true)
end

_M.set_bc = set_bc
_M.arm = arm
_M.stop_if_idle = stop_if_idle
_M.remove = remove

return _M
