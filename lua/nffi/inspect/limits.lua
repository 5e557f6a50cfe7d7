-- What bounds a breakpoint, line (breakpoints.lua) or task (taskbp.lua) alike:
-- its condition and log template (cond.lua) decide which hits count, `count`
-- hits or `timeout_ms` and it is removed, at most `rate` hits a second are
-- reported (a token bucket; a hit over the rate or a full ring is dropped and
-- counted), and the dropped/removed events tell the client. One place, so the
-- two kinds take the same spec fields with the same error messages. The
-- hit-path functions allocate nothing: they run in hooks.
local cond = require "nffi.inspect.cond"

local ngx = ngx
local ngx_now = ngx.now
local ngx_log = ngx.log
local INFO = ngx.INFO
local type = type
local next = next

local _M = { _VERSION = "0.1.0" }

local DEFAULT_RATE = 50
local DEFAULT_TIMEOUT_MS = 600000

local function positive(spec, name, dflt)
    local v = spec[name]
    if v == nil then
        return dflt
    end
    if type(v) ~= "number" or v <= 0 then
        return nil, name .. " must be a positive number"
    end
    return v
end

-- bp.cond and bp.log from spec.condition and spec.log (cond.lua), then
-- bp.count, bp.rate and its bucket (burst, tokens, t_last) and bp.expires
-- from spec.count, spec.rate and spec.timeout_ms. true, or nil and the
-- message the client shows (tests match these words). b: the request's
-- budget, compiling in its slices (may yield); nil: in one piece.
function _M.parse(bp, spec, b)
    local err
    if spec.condition ~= nil then
        if type(spec.condition) ~= "string" then
            return nil, "condition must be a string"
        end
        bp.cond, err = cond.compile(spec.condition, b)
        if not bp.cond then
            return nil, "condition rejected: " .. err
        end
    end
    if spec.log ~= nil then
        bp.log, err = cond.compile_template(spec.log, b)
        if not bp.log then
            return nil, "log rejected: " .. err
        end
    end
    bp.count, err = positive(spec, "count", nil)
    if err then
        return nil, err
    end
    bp.rate, err = positive(spec, "rate", DEFAULT_RATE)
    if not bp.rate then
        return nil, err
    end
    local timeout_ms
    timeout_ms, err = positive(spec, "timeout_ms", DEFAULT_TIMEOUT_MS)
    if not timeout_ms then
        return nil, err
    end
    -- a rate under 1/s still lets one hit through: the bucket holds at least 1
    bp.burst = bp.rate < 1 and 1 or bp.rate
    bp.tokens = bp.burst
    local now = ngx_now()
    bp.t_last = now  -- a line bp resets it when armed
    bp.expires = now + timeout_ms / 1000
    return true
end

-- Hit path ----------------------------------------------------------------------

-- Counts a hit of bp; true when it is the last one its count allows.
function _M.count_hit(bp)
    local hits = bp.hits + 1
    bp.hits = hits
    return bp.count ~= nil and hits >= bp.count
end

-- The tokens in bp's bucket at now: refilled at bp.rate a second, at most
-- bp.burst. The caller stores what it leaves: bp.tokens = tokens - 1 for a
-- hit it reports, drop(bp, tokens) for one it does not.
function _M.refill(bp, now)
    local tokens = bp.tokens + (now - bp.t_last) * bp.rate
    if tokens > bp.burst then
        tokens = bp.burst
    end
    bp.t_last = now
    return tokens
end

-- A hit not reported (over the rate, or no room): counted, told later.
function _M.drop(bp, tokens)
    bp.tokens = tokens
    bp.dropped = bp.dropped + 1
    bp.unreported = bp.unreported + 1
end

-- Events ----------------------------------------------------------------------

-- Debugger.dropped for the hits dropped since the last report.
local function dropped_event(bp)
    local doc = { method = "Debugger.dropped", params = { id = bp.id, count = bp.unreported } }
    bp.unreported = 0
    return doc
end

-- The events of a bp removed for reason: its last drops, then Debugger.removed.
-- control queues an event (the line engine's control queue).
function _M.report_removed(bp, reason, control)
    if bp.unreported > 0 then
        control(dropped_event(bp))
    end
    control({ method = "Debugger.removed", params = { id = bp.id, reason = reason } })
    ngx_log(INFO, "[nffi bp ", bp.id, " removed ", reason, "]")
end

-- From the writer, never the hook: removes (remove(bp, "timeout")) the bps
-- of id -> bp map bps whose timeout has passed, reports the others' drops.
function _M.sweep(bps, now, remove, control)
    for _, bp in next, bps do
        if now >= bp.expires then
            remove(bp, "timeout")
        elseif bp.unreported > 0 then
            control(dropped_event(bp))
        end
    end
end

return _M
