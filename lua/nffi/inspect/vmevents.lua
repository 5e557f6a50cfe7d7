-- LuaJIT VM event handlers ("trace", "bc", ...) that share the event with the
-- application. jit.attach keeps one handler per event (a slot of the registry
-- table _VMEVENTS, keyed by a hash of the event name), so attaching ours
-- plainly would drop the application's (jit.v, jit.dump, its own counters)
-- for good. Here an event gets one chained handler: ours, then the one that
-- was there; when ours go, that one is put back, unless the application has
-- attached another meanwhile (then that one stays).
local jit_attach = jit.attach
local debug_getregistry = debug.getregistry
local next = next
local tab_remove = table.remove

local _M = { _VERSION = "0.1.0" }

local REGKEY = "_VMEVENTS"  -- lj_vmevent.h LJ_VMEVENTS_REGKEY

-- event -> { key = registry slot, prev = handler found there, chain = ours,
--            fns = { fn, ... } }
local chains = {}

local function slots()
    return debug_getregistry()[REGKEY]
end

-- The handler currently in event's slot, and the slot: a throwaway handler
-- attached to the event shows which slot it is.
local function current(event)
    local before = {}
    local t = slots()
    if t then
        for k, v in next, t do
            before[k] = v
        end
    end
    local function probe() end
    jit_attach(probe, event)
    for k, v in next, slots() do
        if v == probe then
            return before[k], k
        end
    end
    return nil, nil
end

local function make_chain(c)
    return function(...)
        local fns = c.fns
        for i = 1, #fns do
            fns[i](...)
        end
        local prev = c.prev
        if prev then
            return prev(...)
        end
    end
end

-- fn runs on event, before whatever handler the event had.
function _M.attach(event, fn)
    local c = chains[event]
    if c then
        for i = 1, #c.fns do
            if c.fns[i] == fn then
                return
            end
        end
        c.fns[#c.fns + 1] = fn
        return
    end
    local prev, key = current(event)
    c = { key = key, prev = prev, fns = { fn } }
    c.chain = make_chain(c)
    chains[event] = c
    jit_attach(c.chain, event)
end

function _M.detach(event, fn)
    local c = chains[event]
    if not c then
        return
    end
    local fns = c.fns
    for i = #fns, 1, -1 do
        if fns[i] == fn then
            tab_remove(fns, i)
        end
    end
    if #fns > 0 then
        return
    end
    chains[event] = nil
    local t = slots()
    if t and c.key ~= nil and t[c.key] ~= c.chain then
        return  -- the application attached its own since: leave it
    end
    if c.prev then
        jit_attach(c.prev, event)
    else
        jit_attach(c.chain)  -- no event: detaches the function
    end
end

return _M
