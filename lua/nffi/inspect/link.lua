-- One session with a probe: length-prefixed JSON frames over a unix-socket
-- cosocket (probe/README.md). The reader (the session timer's own coroutine)
-- answers pings and detach at once; one light thread serves the other requests
-- in order, so a long walk never delays a heartbeat. Writes go through a lock:
-- a cosocket refuses two concurrent senders.
local json = require "nffi.inspect.json"
local budget = require "nffi.inspect.budget"
local coroutines = require "nffi.inspect.coroutines"
local capture = require "nffi.inspect.capture"
local ffi_view = require "nffi.inspect.ffi_view"
local breakpoints = require "nffi.inspect.breakpoints"
local scripts = require "nffi.inspect.scripts"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local socket_tcp = ngx.socket.tcp
local spawn = ngx.thread.spawn
local kill = ngx.thread.kill
local worker_exiting = ngx.worker.exiting
local type = type
local pcall = pcall
local tostring = tostring
local str_byte = string.byte
local str_char = string.char
local str_sub = string.sub
local math_floor = math.floor
local encode = json.encode
local encode_chunks = json.encode_chunks
local decode = json.decode

local _M = { _VERSION = "0.1.0" }

local MAX_FRAME = 16 * 1024 * 1024
local CONNECT_TIMEOUT_MS = 2000
local SEND_TIMEOUT_MS = 10000
local LOCK_TIMEOUT_S = 30
local QUEUE_MAX = 64

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
        return st
    end,
}
_M.handlers = handlers

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
        if size + len > SEND_PIECE and n > 0 then
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
    if n > 0 then
        return send_piece(sock, piece, b)
    end
    return true
end

local function send_doc(s, doc, b)
    local chunks, total = encode_chunks(doc, b)
    if b then
        b:finish()
    end
    if total > MAX_FRAME then
        if doc.id == nil then
            return nil, "event too large"
        end
        local body = encode({ id = doc.id, error = { code = -32000,
                              message = "result too large (" .. total .. " bytes)" } })
        chunks, total = { body }, #body
    end
    local ok, err = s.lock:wait(LOCK_TIMEOUT_S)
    if not ok then
        return nil, "send lock: " .. tostring(err)
    end
    if b then
        b:resume()
    end
    -- the lock stays held across the pieces: frames never interleave
    local sent, serr = send_frame(s.sock, be32(total), chunks, b)
    s.lock:post(1)
    if not sent then
        s.fatal = serr
        return nil, serr
    end
    return true
end

local function read_frame(sock)
    local hdr, err = sock:receive(4)
    if not hdr then
        return nil, err
    end
    local b1, b2, b3, b4 = str_byte(hdr, 1, 4)
    local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    if len > MAX_FRAME then
        return nil, "frame too large (" .. len .. " bytes)"
    end
    if len == 0 then
        return ""
    end
    return sock:receive(len)
end

local function run_request(s, msg)
    local handler = handlers[msg.method]
    -- slices are counted per known method only: names come from the probe
    local b = budget.new(nil, handler and msg.method)
    local doc
    if not handler then
        doc = { id = msg.id, error = { code = -32601, message = "unknown method "
                                       .. tostring(msg.method) } }
    else
        local params = type(msg.params) == "table" and msg.params or {}
        local ok, res, err = pcall(handler, params, b)
        if not ok then
            doc = { id = msg.id, error = { code = -32603, message = tostring(res) } }
        elseif res == nil then
            doc = { id = msg.id, error = { code = -32602, message = tostring(err) } }
        else
            doc = { id = msg.id, result = res }
        end
    end
    local ok, err = pcall(send_doc, s, doc, b)
    if not ok then
        -- an encoding failure: still answer
        send_doc(s, { id = msg.id, error = { code = -32603, message = tostring(err) } })
    end
end

-- The light thread that serves queued requests one at a time.
local function server(s)
    while not s.closing do
        local msg = s.queue[s.qhead]
        if msg then
            s.queue[s.qhead] = nil
            s.qhead = s.qhead + 1
            run_request(s, msg)
        else
            s.ready:wait(1)
        end
    end
end
coroutines.mark_own(server, "thread")

local function dispatch(s, msg)
    local method = msg.method
    if method == "Agent.ping" then
        if msg.id ~= nil then
            return send_doc(s, { id = msg.id, result = {} })
        end
        return send_doc(s, { method = "Agent.ping", params = {} })
    end
    if msg.id == nil then
        return true  -- other events: ignored
    end
    if method == "Agent.detach" then
        send_doc(s, { id = msg.id, result = {} })
        return nil, "detach"
    end
    if s.qtail - s.qhead >= QUEUE_MAX then
        return send_doc(s, { id = msg.id, error = { code = -32000,
                             message = "agent busy: too many queued requests" } })
    end
    s.queue[s.qtail] = msg
    s.qtail = s.qtail + 1
    s.ready:post(1)
    return true
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
    local wth = breakpoints.start_session(function(doc)
        return send_doc(s, doc)
    end)
    local reason
    while true do
        local frame, rerr = read_frame(sock)
        if not frame then
            if rerr == "timeout" then
                reason = "heartbeat timeout"
            elseif rerr == "closed" then
                reason = "closed"
            else
                reason = tostring(rerr)
            end
            break
        end
        local msg = decode(frame)
        if type(msg) == "table" then
            local dok, derr = dispatch(s, msg)
            if not dok then
                reason = derr or s.fatal or "send failed"
                break
            end
        end
        if s.fatal then
            reason = "send failed: " .. tostring(s.fatal)
            break
        end
        if worker_exiting() then
            reason = "worker exiting"
            break
        end
    end
    s.closing = true
    kill(th)
    kill(wth)
    breakpoints.reset()
    sock:close()
    return reason
end

return _M
