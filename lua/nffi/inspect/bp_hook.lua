-- Hook control for line breakpoints (breakpoints.lua): which hook runs
-- (libnffi's C line hook, else the Lua one; both call bp_hits.lua's hook),
-- installing and removing it, calibrating the C hook for call gating, naming it
-- the armed functions (retarget), and resync, the walk that corrects its count
-- of coroutines inside them.
-- State: this module writes the hook's fields of the state table that
-- breakpoints.lua passes to init (S.C, S.hook_on, S.hook_kind, S.gated,
-- S.hook_co, S.target_keys, S.scan_gen, S.scanned_gen, S.names_gen,
-- S.ungated_why); the others only read them.
local coroutines = require "nffi.inspect.coroutines"
local jitctl = require "nffi.inspect.jitctl"
local budget = require "nffi.inspect.budget"
local jutil = require "jit.util"
local native = require "nffi.native"
local hits = require "nffi.inspect.bp_hits"

local debug_sethook = debug.sethook
local debug_gethook = debug.gethook
local debug_getinfo = debug.getinfo
local debug_getregistry = debug.getregistry
local type = type
local setmetatable = setmetatable
local rawget = rawget
local co_status = rawget(coroutine, "_status") or coroutine.status
local next = next
local pcall = pcall
local co_running = coroutine.running
-- LuaJIT's builtins (lua-nginx-module keeps them as coroutine._*), and its own
local co_create_std = rawget(coroutine, "_create") or coroutine.create
local co_resume_std = rawget(coroutine, "_resume") or coroutine.resume
local co_yield_std = rawget(coroutine, "_yield") or coroutine.yield
local co_wrap_std = rawget(coroutine, "_wrap") or coroutine.wrap
local co_resume_ngx = rawget(coroutine, "__resume")
local co_wrap_ngx = rawget(coroutine, "__wrap")
local key_of = jitctl.key_of
local ptr_of = native.ptr_of
local hook = hits.hook

local _M = { _VERSION = "0.1.0" }

local HOOK_KEY = "nffi.inspect.bp_hook"  -- registry slot the C hook calls (native/src/hook.c)
local INSIDE_KEY = "nffi.inspect.bp_inside"  -- coroutines the C hook saw enter a target
local calibrated            -- nil: not tried; true/false: closure layout known
local S                     -- the state shared with breakpoints.lua (init)

function _M.init(state)
    S = state
end

-- libnffi's C line hook (a bitmap test per line, Lua only on a breakpoint
-- line), or nil when the library or the host's lua_* symbols are missing.
local function c_hook()
    if S.C == nil then
        local ok, lib = pcall(native.lib)
        S.C = ok and lib.nffi_hook_available() == 1 and lib or false
    end
    return S.C or nil
end

-- lua_State* of the running coroutine (any state of the VM will do: LuaJIT
-- hooks are per VM); nil in the main thread.
local function state_ptr()
    return ptr_of(co_running())
end

-- The C hook names breakpointed functions by bytecode address; it learns where
-- a closure keeps it from a closure and prototype of ours.
local function make_probe()
    return function() return 1 end
end

local function noop() end

-- The gated hook must see a coroutine resumed inside a breakpointed function
-- (native/src/hook_resume.c): it learns the functions that resume one from a
-- coroutine of ours suspended with them as locals, named for how they find
-- the coroutine.
local function learn_resumers(lib)
    local ok, ngx_sample = pcall(co_wrap_ngx or co_wrap_std, noop)
    local h = co_create_std(function(resume_ngx, resume_std, wrapped_ngx, wrapped_std)
        co_yield_std()
        return resume_ngx, resume_std, wrapped_ngx, wrapped_std
    end)
    co_resume_std(h, co_resume_ngx, co_resume_std, ok and ngx_sample or nil, co_wrap_std(noop))
    local p = ptr_of(h)
    local n = p and lib.nffi_hook_learn_resumers(p) or 0
    co_resume_std(h)
    return n
end

local function calibrate(lib)
    if calibrated == nil then
        local fn, proto = make_probe(), jutil.funck(make_probe, -1)
        local pf, pp = ptr_of(fn), type(proto) == "proto" and ptr_of(proto)
        calibrated = pf ~= nil and pp ~= nil and lib.nffi_hook_calibrate(pf, pp) == 1
            and learn_resumers(lib) > 0
        if not calibrated then
            S.ungated_why = "closure layout or resume functions of this LuaJIT unknown"
        end
    end
    return calibrated
end

-- Names every armed function to the C hook; false when it cannot take them all.
local function name_targets()
    S.names_gen = S.names_gen + 1
    S.C.nffi_hook_targets_clear()
    S.target_keys = {}
    for _, bp in next, S.bps do
        if bp.state == "armed" then
            for i = 1, #bp.objs do
                local o = bp.objs[i]
                local p = ptr_of(o)
                if not p or S.C.nffi_hook_target(p, type(o) == "proto" and 1 or 0) ~= 0 then
                    return false
                end
                S.target_keys[key_of(o)] = true
            end
        end
    end
    return true
end

-- Whether the VM's current hook is the one we installed.
local function hook_ours()
    if S.hook_kind == "c" then
        local L = state_ptr()
        return L ~= nil and S.C.nffi_hook_installed(L) == 1
    end
    return debug_gethook() == hook
end

local function set_hook(on)
    if on and not S.hook_on then
        local h = debug_gethook()
        if h ~= nil and h ~= hook then
            return nil, "another debug hook is installed in this worker"
        end
        local lib, L = S.opts.use_c_hook and c_hook(), state_ptr()
        if lib and L ~= nil then
            local reg = debug_getregistry()
            reg[HOOK_KEY] = hook
            for line in hits.lines() do
                lib.nffi_hook_set_line(line, 1)
            end
            -- lua_sethook needs any live state of the VM: this coroutine, kept
            -- referenced so its address stays valid for the gating calls
            S.hook_co = co_running()
            S.gated = S.opts.gate and calibrate(lib) or false
            if not S.opts.gate then
                S.ungated_why = "call gating switched off"
            end
            if S.gated then
                -- targets (and lines forced on meanwhile) come with retarget()
                reg[INSIDE_KEY] = setmetatable({}, { __mode = "k" })
            end
            lib.nffi_hook_install(L, S.gated and 1 or 0)
            S.hook_kind = "c"
        else
            hits.lua_hook_on()
            S.hook_kind = "lua"
        end
        S.hook_on = true
    elseif not on and S.hook_on then
        if S.hook_kind == "c" then
            local L = state_ptr() or ptr_of(S.hook_co)
            if L ~= nil then
                S.C.nffi_hook_remove(L)
            else
                debug_sethook()
            end
            S.C.nffi_hook_clear_lines()
            S.C.nffi_hook_targets_clear()
            local reg = debug_getregistry()
            reg[HOOK_KEY], reg[INSIDE_KEY] = nil, nil
            S.gated, S.target_keys, S.hook_co = false, {}, nil
        else
            debug_sethook()
        end
        S.hook_on = false
        S.hook_kind = nil
    end
    return true
end

-- After arming (added) or removing: the C hook's targets follow the armed
-- breakpoints. A new target may have a coroutine suspended inside it, which no
-- call event will reveal: line events stay on until a full walk (resync).
local function retarget(added)
    if S.hook_kind ~= "c" or not S.gated then
        return
    end
    local L = ptr_of(S.hook_co)
    if not name_targets() then
        S.gated = false  -- more targets than the C hook holds: every line then
        S.C.nffi_hook_install(L, 0)
        S.ungated_why = "too many breakpointed functions for the call-gated hook"
        return
    end
    if added then
        S.C.nffi_hook_force_lines(L)
        S.scan_gen = S.scan_gen + 1
        hits.signal()
    end
end

-- Frames of co running an armed function (0 for a dead or running coroutine).
local function target_depth(co)
    if co == co_running() or co_status(co) == "dead" then
        return 0
    end
    local d = 0
    for level = 0, 100000 do
        local info = debug_getinfo(co, level, "f")
        if not info then
            break
        end
        if S.target_keys[key_of(info.func)] then
            d = d + 1
        end
    end
    return d
end

-- Corrects the C hook's count of coroutines inside armed functions: the ones
-- it saw enter (an error unwinding past a frame skips its return event) and,
-- after an arm, every coroutine (full: may yield, budget b).
local function resync(full, b)
    local reg = debug_getregistry()
    local inside = reg[INSIDE_KEY]
    if not S.gated or type(inside) ~= "table" then
        return
    end
    local gen = S.scan_gen
    if full then
        local list = coroutines.collect(b)
        if not list then
            return  -- lines stay forced on; the next service walk tries again
        end
        for i = 1, #list do
            local co = list[i].co
            if target_depth(co) > 0 then
                inside[co] = true
            end
            b:step()  -- a yield here is safe: the hook keeps the counts it sees
        end
        if not S.gated or reg[INSIDE_KEY] ~= inside then
            return  -- the hook went away while the walk yielded
        end
    end
    S.C.nffi_hook_resync_begin()
    for co in next, inside do
        local d = target_depth(co)
        if d == 0 then
            inside[co] = nil
        end
        local p = ptr_of(co)
        if p then
            S.C.nffi_hook_resync_set(p, d)
        end
    end
    -- a walk that an arm overtook does not clear that arm's forced lines
    local done = full and gen == S.scan_gen
    S.C.nffi_hook_resync_end(ptr_of(S.hook_co), done and 1 or 0)
    if done then
        S.scanned_gen = gen
    end
end

-- From the writer's service while breakpoints are armed: a hook that is no
-- longer ours is installed again, with its targets.
function _M.reclaim()
    if not hook_ours() then
        S.hook_on, S.hook_kind = false, nil
        set_hook(true)
        retarget(true)
    end
end

-- From the writer's service while the C hook is call-gated.
function _M.upkeep()
    if S.scanned_gen == S.scan_gen and S.C.nffi_hook_forced() == 1 then
        S.scan_gen = S.scan_gen + 1  -- a late watchpoint trap: lines on until a full walk
    end
    if S.scanned_gen ~= S.scan_gen then
        resync(true, budget.new())
    elseif S.C.nffi_hook_inside() ~= 0 then
        resync(false)
    end
end

_M.c_hook = c_hook
_M.state_ptr = state_ptr
_M.calibrate = calibrate
_M.hook_ours = hook_ours
_M.set_hook = set_hook
_M.retarget = retarget

return _M
