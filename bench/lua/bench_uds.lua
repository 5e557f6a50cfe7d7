-- The unix-socket way the FFI benchmarks compare nffi with: a cosocket to an
-- echo server (bench/native/uds_echo.c, native/examples/go/uds) speaking
-- frames of a 4-byte big-endian length and that many bytes.
local ngx = ngx
local socket_tcp = ngx.socket.tcp
local str_char = string.char
local str_byte = string.byte
local floor = math.floor
local assert = assert

local _M = {}

local function be32(n)
    return str_char(floor(n / 16777216) % 256, floor(n / 65536) % 256,
                    floor(n / 256) % 256, n % 256)
end

local function unbe32(s)
    local a, b, c, d = str_byte(s, 1, 4)
    return ((a * 256 + b) * 256 + c) * 256 + d
end

-- payload as one frame (a caller sending the same payload frames it once)
function _M.frame(payload)
    return be32(#payload) .. payload
end

-- A connected cosocket and call(frame) -> the payload of the server's answer.
function _M.client(path)
    local sock = socket_tcp()
    assert(sock:connect("unix:" .. path))
    return sock, function(frame)
        assert(sock:send(frame))
        local hdr = assert(sock:receive(4))
        return (assert(sock:receive(unbe32(hdr))))
    end
end

return _M
