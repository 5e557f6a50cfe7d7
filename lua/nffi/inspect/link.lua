-- One session with a probe: length-prefixed JSON frames over a unix-socket
-- cosocket (probe/README.md). The reader (the session timer's own coroutine)
-- answers pings and detach at once; one light thread serves the other requests
-- in order, so a long walk never delays a heartbeat. Writes go through a lock:
-- a cosocket refuses two concurrent senders.
-- A probe is not trusted (DESIGN.md): every frame is bounded before it is
-- decoded (MAX_REQUEST), decoded strictly (json.lua), its params checked
-- against their declaration (params.lua) before a handler sees them, and
-- answered even when it is not valid: an error response when its id can be
-- read, else an Agent.protocolError event; each kind is counted (getStats).
local json = require "nffi.inspect.json"
local params = require "nffi.inspect.params"
local budget = require "nffi.inspect.budget"
local coroutines = require "nffi.inspect.coroutines"
local capture = require "nffi.inspect.capture"
local ffi_view = require "nffi.inspect.ffi_view"
local breakpoints = require "nffi.inspect.breakpoints"
local scripts = require "nffi.inspect.scripts"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local socket_tcp = ngx.socket.tcp
local ngx_sleep = ngx.sleep
local spawn = ngx.thread.spawn
local kill = ngx.thread.kill
local worker_exiting = ngx.worker.exiting
local type = type
local next = next
local error = error
local pcall = pcall
local rawget = rawget
local tostring = tostring
local tonumber = tonumber
local str_byte = string.byte
local str_char = string.char
local str_sub = string.sub
local str_find = string.find
local str_gsub = string.gsub
local str_match = string.match
local str_format = string.format
local math_floor = math.floor
local encode_chunks = json.encode_chunks
local decode = json.decode
local now_ns = budget.now_ns

local _M = { _VERSION = "0.1.0" }

-- The protocol's limit: answers and events the agent sends, and any frame.
local MAX_FRAME = 16 * 1024 * 1024
-- Frames the agent decodes: the largest request (a breakpoint spec with its
-- url, condition and log at their maximum lengths) is under 7 KiB, and cjson
-- decodes 8 KiB of the worst JSON (all empty objects) in about 1 ms. A longer
-- frame is read in pieces and thrown away, and answered with an error.
local MAX_REQUEST = 8192
local DISCARD_PIECE = 65536
-- The bytes of a frame searched for its id when it cannot be decoded.
local HEAD_BYTES = 256
local CONNECT_TIMEOUT_MS = 2000
local SEND_TIMEOUT_MS = 10000
local LOCK_TIMEOUT_S = 30
local QUEUE_MAX = 64
-- a loop of separately budgeted steps yields this often (budget.lua's slice)
local PACE_NS = 750000
local YIELD_S = 0.001

local handlers = {
    ["Lua.getCoroutines"] = coroutines.get_coroutines,
    ["Lua.getStack"] = capture.get_stack,
    ["FFI.getRuntimes"] = ffi_view.get_runtimes,
    ["FFI.getTasks"] = ffi_view.get_tasks,
    ["Debugger.setBreakpoint"] = breakpoints.set_breakpoint,
    ["Debugger.removeBreakpoint"] = breakpoints.remove_breakpoint,
    ["Debugger.getBreakpoints"] = breakpoints.get_breakpoints,
    ["Debugger.getScripts"] = scripts.get_scripts,
    ["Agent.getStats"] = function()
        local st = budget.stats()
        st.breakpoints = breakpoints.get_stats()
        st.protocol = _M.protocol_stats()
        return st
    end,
}
_M.handlers = handlers

-- Every served method has its parameters declared, and only those: refused
-- at require time otherwise (the reader answers Agent.detach itself).
for name in next, handlers do
    if not params.commands[name] then
        error("nffi.inspect.link: no parameter declaration for " .. name)
    end
end
for name in next, params.commands do
    if not handlers[name] and name ~= "Agent.detach" then
        error("nffi.inspect.link: " .. name .. " is declared but not served")
    end
end

-- Frames that were not what the protocol allows, since the worker started.
local counts = {
    parse_errors = 0,      -- not JSON (or nested too deep, NaN, Infinity)
    too_large = 0,         -- over MAX_REQUEST (read and dropped) or over MAX_FRAME
    invalid_requests = 0,  -- not an object, a bad id, no method
    unknown_methods = 0,
    invalid_params = 0,
    busy = 0,              -- refused: QUEUE_MAX requests already waiting
    ignored_events = 0,    -- events (no id) the agent does not know
    events_dropped = 0,    -- events of its own over MAX_FRAME, never sent
}

function _M.protocol_stats()
    local out = {}
    for k, v in next, counts do
        out[k] = v
    end
    return out
end

local function be32(n)
    return str_char(math_floor(n / 16777216) % 256, math_floor(n / 65536) % 256,
                    math_floor(n / 256) % 256, n % 256)
end

-- One cosocket send copies all it is given into one buffer before writing:
-- a frame goes out in pieces of at most this many bytes, with the budget
-- checked between them, so a 16 MiB answer never holds the worker for one copy.
local SEND_PIECE = 65536

local function send_piece(sock, piece, b)
    if b then
        b:finish()
    end
    local sent, err = sock:send(piece)
    if b then
        b:resume()
        b:check()
    end
    return sent, err
end

-- header, then the chunks, in pieces; a chunk longer than a piece is cut
local function send_frame(sock, header, chunks, b)
    local piece, n, size = { header }, 1, #header
    for i = 1, #chunks do
        local c = chunks[i]
        local len = #c
        if size + len > SEND_PIECE and size > 0 then
            local ok, err = send_piece(sock, piece, b)
            if not ok then
                return nil, err
            end
            piece, n, size = {}, 0, 0
        end
        if len > SEND_PIECE then
            for j = 1, len, SEND_PIECE do
                local ok, err = send_piece(sock, str_sub(c, j, j + SEND_PIECE - 1), b)
                if not ok then
                    return nil, err
                end
            end
        else
            n = n + 1
            piece[n] = c
            size = size + len
        end
    end
    if size > 0 then
        return send_piece(sock, piece, b)
    end
    return true
end

-- Encodes doc, stopping at MAX_FRAME: an answer too large becomes an error
-- answer, an event too large is dropped (counted, and said in a small event).
local function encode_doc(doc, b)
    local ok, chunks, total = pcall(encode_chunks, doc, b, MAX_FRAME)
    if ok and chunks then
        return chunks, total
    end
    local why = ok and ("more than " .. MAX_FRAME .. " bytes") or tostring(chunks)
    local small
    if doc.id ~= nil then
        local what = ok and "result too large (" or "cannot encode the result ("
        small = { id = doc.id, error = { code = -32000, message = what .. why .. ")" } }
    else
        counts.events_dropped = counts.events_dropped + 1
        small = { method = "Agent.protocolError",
                  params = { code = -32000, message = "event " .. tostring(doc.method)
                             .. " dropped: " .. (ok and "" or "cannot encode it: ") .. why } }
    end
    return encode_chunks(small)
end

-- header and chunks as one frame or run of frames, under the send lock
local function send_locked(s, header, chunks, b)
    b:finish()
    local ok, err = s.lock:wait(LOCK_TIMEOUT_S)
    if not ok then
        return nil, "send lock: " .. tostring(err)
    end
    b:resume()
    -- the lock stays held across the pieces: frames never interleave
    local sent, serr = send_frame(s.sock, header, chunks, b)
    s.lock:post(1)
    if not sent then
        s.fatal = serr
        return nil, serr
    end
    return true
end

local function send_doc(s, doc, b)
    -- a budget of its own when the caller has none (events): a long string
    -- is escaped in pieces with the clock read between them
    b = b or budget.new()
    local chunks, total = encode_doc(doc, b)
    return send_locked(s, be32(total), chunks, b)
end

-- Several events in as few sends as fit: each encoded as its own frame, the
-- frames back to back. A send goes out once BATCH_BYTES are gathered, so a
-- batch of large snapshots is never all held encoded at once.
local BATCH_BYTES = 262144

local function send_docs(s, docs, n)
    local b = budget.new()
    local parts, k, size = {}, 0, 0
    for i = 1, n do
        local chunks, total = encode_doc(docs[i], b)
        k = k + 1
        parts[k] = be32(total)
        for j = 1, #chunks do
            k = k + 1
            parts[k] = chunks[j]
        end
        size = size + 4 + total
        if size >= BATCH_BYTES then
            local ok, err = send_locked(s, "", parts, b)
            if not ok then
                return nil, err
            end
            parts, k, size = {}, 0, 0
        end
        b:check()
    end
    if k > 0 then
        return send_locked(s, "", parts, b)
    end
    return true
end

-- An error response when the id is known, else an Agent.protocolError event.
local function reply_error(s, id, code, message)
    if id ~= nil then
        return send_doc(s, { id = id, error = { code = code, message = message } })
    end
    return send_doc(s, { method = "Agent.protocolError",
                         params = { code = code, message = message } })
end

-- The id of a frame that could not be decoded, when its first bytes show one
-- at the top level (before any nested object or array): {"id":7,"method":…
local function id_in(text)
    local head = str_sub(text, 1, HEAD_BYTES)
    local open = str_find(head, "{", 1, true)
    if not open then
        return nil
    end
    local stop = str_find(head, "[{%[]", open + 1) or #head + 1
    local top = "," .. str_sub(head, open + 1, stop - 1)
    local digits = str_match(top, '^,%s*"id"%s*:%s*(%d+)%s*[,}]')
                   or str_match(top, ',%s*"id"%s*:%s*(%d+)%s*[,}]')
    local id = digits and #digits <= 16 and tonumber(digits)
    return id and params.valid_id(id) and id or nil
end

local function hex_byte(c)
    return str_format("\\x%02x", str_byte(c))
end

-- A method name as an error message shows it: short names as they are, any
-- other quoted and cut to 32 bytes, control characters, quotes, backslashes
-- and bytes past ASCII as \xNN (the client prints it to a terminal).
local function shown(method)
    if #method <= 64 and not str_find(method, "[^%w%._%-]") then
        return method
    end
    local cut = str_gsub(str_sub(method, 1, 32), '[%c\128-\255"\\]', hex_byte)
    return '"' .. cut .. '"' .. (#method > 32 and ("... (" .. #method .. " bytes)") or "")
end

-- Reads one frame. Returns its text; or false, its first bytes and its
-- length when it is over MAX_REQUEST (the rest was read and dropped); or nil
-- and the socket error; or nil, nil and the length when it is over MAX_FRAME
-- (the stream cannot be trusted past it). rb: the reader's budget, closed
-- while the socket may wait.
local function read_frame(sock, rb)
    rb:finish()
    local hdr, err = sock:receive(4)
    rb:resume()
    if not hdr then
        return nil, err
    end
    local b1, b2, b3, b4 = str_byte(hdr, 1, 4)
    local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    if len > MAX_FRAME then
        return nil, nil, len
    end
    if len == 0 then
        return ""
    end
    if len <= MAX_REQUEST then
        rb:finish()
        local body, berr = sock:receive(len)
        rb:resume()
        if not body then
            return nil, berr
        end
        return body
    end
    local left, head = len, nil
    while left > 0 do
        local n = left < DISCARD_PIECE and left or DISCARD_PIECE
        rb:finish()
        local piece, perr = sock:receive(n)
        rb:resume()
        if not piece then
            return nil, perr
        end
        head = head or str_sub(piece, 1, HEAD_BYTES)
        left = left - n
        rb:check()
    end
    return false, head, len
end

local function run_request(s, msg)
    local method = msg.method
    local b = budget.new(nil, method)
    local doc
    local ok, res, err = pcall(handlers[method], msg.params, b)
    if not ok then
        doc = { id = msg.id, error = { code = -32603, message = tostring(res) } }
    elseif res == nil then
        doc = { id = msg.id, error = { code = -32602, message = tostring(err) } }
    else
        doc = { id = msg.id, result = res }
    end
    send_doc(s, doc, b)
end

-- Yields (1 ms) when `since` (ns) is PACE_NS or more ago; returns when it
-- last yielded. For loops whose steps each have a budget of their own (the
-- server's requests, the writer's events): without it a run of short steps,
-- each under its own slice, could hold the worker back to back.
local function pace(since)
    local now = now_ns()
    if now - since < PACE_NS then
        return since
    end
    ngx_sleep(YIELD_S)
    return now_ns()
end

-- The light thread that serves queued requests one at a time.
local function server(s)
    local since = now_ns()
    while not s.closing do
        local msg = s.queue[s.qhead]
        if msg then
            s.queue[s.qhead] = nil
            s.qhead = s.qhead + 1
            run_request(s, msg)
            since = pace(since)
        else
            s.ready:wait(1)
            since = now_ns()
        end
    end
end
coroutines.mark_own(server, "thread")

-- One decoded request or event: answered here (ping, detach, every refusal)
-- or queued for the server with its checked params.
local function dispatch(s, id, method, raw)
    if method == "Agent.ping" then
        if id ~= nil then
            return send_doc(s, { id = id, result = {} })
        end
        return send_doc(s, { method = "Agent.ping", params = {} })
    end
    if id == nil then
        counts.ignored_events = counts.ignored_events + 1
        return true  -- other events: ignored
    end
    if method == "Agent.detach" then
        send_doc(s, { id = id, result = {} })
        return nil, "detach"
    end
    if not handlers[method] then
        counts.unknown_methods = counts.unknown_methods + 1
        return reply_error(s, id, -32601, "unknown method " .. shown(method))
    end
    local p, perr = params.check(method, raw)
    if not p then
        counts.invalid_params = counts.invalid_params + 1
        return reply_error(s, id, -32602, perr)
    end
    if s.qtail - s.qhead >= QUEUE_MAX then
        counts.busy = counts.busy + 1
        return reply_error(s, id, -32000, "agent busy: too many queued requests")
    end
    s.queue[s.qtail] = { id = id, method = method, params = p }
    s.qtail = s.qtail + 1
    s.ready:post(1)
    return true
end

-- One frame's text: decoded, checked as a request, dispatched.
local function handle(s, frame)
    local msg, derr
    if str_find(frame, "\0", 1, true) then
        -- cjson would stop at it and take what came before as the whole frame
        derr = "a NUL byte in the frame"
    else
        msg, derr = decode(frame)
    end
    if msg == nil then
        counts.parse_errors = counts.parse_errors + 1
        return reply_error(s, id_in(frame), -32700, "not valid JSON: " .. tostring(derr))
    end
    if type(msg) ~= "table" or rawget(msg, 1) ~= nil then
        counts.invalid_requests = counts.invalid_requests + 1
        return reply_error(s, nil, -32600, "a frame must be a JSON object")
    end
    local id = msg.id
    if id ~= nil and not params.valid_id(id) then
        counts.invalid_requests = counts.invalid_requests + 1
        return reply_error(s, nil, -32600, "id must be a non-negative integer")
    end
    local method = msg.method
    if type(method) ~= "string" then
        counts.invalid_requests = counts.invalid_requests + 1
        return reply_error(s, id, -32600, "method must be a string")
    end
    return dispatch(s, id, method, msg.params)
end

-- Connects, says hello, serves until the session ends. Returns the reason.
function _M.run(socket_path, hello, opts)
    local sock = socket_tcp()
    sock:settimeouts(CONNECT_TIMEOUT_MS, SEND_TIMEOUT_MS, opts.heartbeat_timeout * 1000)
    local ok, err = sock:connect("unix:" .. socket_path)
    if not ok then
        return nil, "connect failed: " .. tostring(err)
    end
    local s = {
        sock = sock, lock = semaphore.new(1), ready = semaphore.new(0),
        queue = {}, qhead = 1, qtail = 1, closing = false,
    }
    local sent, serr = send_doc(s, { method = "Agent.hello", params = hello })
    if not sent then
        sock:close()
        return nil, "hello failed: " .. tostring(serr)
    end
    if opts.on_attached then
        opts.on_attached()
    end
    local th = spawn(server, s)
    -- the breakpoint writer ships hits as events through the same send lock
    -- paced as a run: events that follow each other closely are one run, a
    -- gap longer than a slice (the writer waited) starts a new one
    local run_start, last_sent = now_ns(), 0
    local wth = breakpoints.start_session(function(docs, n)
        if now_ns() - last_sent > PACE_NS then
            run_start = now_ns()
        end
        run_start = pace(run_start)
        local done, why = send_docs(s, docs, n)
        last_sent = now_ns()
        return done, why
    end)
    local reason
    -- the reader's own slices: a flood of frames already in the socket
    -- buffer is read without the socket ever waiting, so it yields itself
    local rb = budget.new()
    while true do
        local frame, rerr, len = read_frame(sock, rb)
        local done, why
        if frame == nil then
            if len then
                counts.too_large = counts.too_large + 1
                reply_error(s, nil, -32600, "frame of " .. len .. " bytes is over the "
                            .. "protocol's limit of " .. MAX_FRAME .. " bytes; closing")
                reason = "frame too large (" .. len .. " bytes)"
            elseif rerr == "timeout" then
                reason = "heartbeat timeout"
            elseif rerr == "closed" then
                reason = "closed"
            else
                reason = tostring(rerr)
            end
            break
        elseif frame == false then
            counts.too_large = counts.too_large + 1
            done, why = reply_error(s, id_in(rerr), -32600, "request of " .. len
                                  .. " bytes is over the agent's limit of " .. MAX_REQUEST
                                  .. " bytes")
        else
            done, why = handle(s, frame)
        end
        if not done then
            reason = why or s.fatal or "send failed"
            break
        end
        if s.fatal then
            reason = "send failed: " .. tostring(s.fatal)
            break
        end
        if worker_exiting() then
            reason = "worker exiting"
            break
        end
        rb:check()
    end
    s.closing = true
    kill(th)
    kill(wth)
    breakpoints.reset()
    sock:close()
    return reason
end

return _M
