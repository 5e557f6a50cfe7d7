-- Lua objects whose address C holds, kept from the GC until C lets go: the
-- semaphore libnffi posts when a task is READY, a request a runtime reads in
-- place. Each is held in a slot, a small integer reused last-freed-first, so
-- the table stays a dense array. Keyed by task id instead (every key new,
-- every one deleted a call later) the hash part was rebuilt over and over:
-- ~0.35 us of the worker's time per call at 32 in flight, a sixth of it.
local _M = { _VERSION = "0.1.0" }

-- slot -> object, or false once let go (never nil: the array part keeps its
-- size and nothing rehashes). Only written: holding is all it is for.
local held = {}     -- luacheck: ignore 241
local free = {}     -- slots let go, a stack
local nfree, nslots = 0, 0

-- Keeps obj alive; returns the slot to let go of it with.
function _M.hold(obj)
    local slot
    if nfree > 0 then
        slot = free[nfree]
        nfree = nfree - 1
    else
        nslots = nslots + 1
        slot = nslots
    end
    held[slot] = obj
    return slot
end

function _M.release(slot)
    held[slot] = false
    nfree = nfree + 1
    free[nfree] = slot
end

return _M
