-- The request a coroutine serves (coroutines.lua): method and URI, read
-- through libnffi from the coroutine's exdata, only where that pointer is
-- known to be live.
local native = require "nffi.native"
local walk = require "nffi.inspect.coroutines_walk"
local ffi = require "ffi"

local pcall = pcall
local tonumber = tonumber
local ffi_new = ffi.new
local ffi_cast = ffi.cast
local ffi_string = ffi.string
local ptr_of = native.ptr_of
local serving = walk.serving
local roots = walk.roots

local _M = { _VERSION = "0.1.0" }

local MAX_URI = 1024            -- bytes of $request_uri shown per coroutine

-- The last request read, reused for the next coroutine with the same request
-- pointer while the event loop has not run since (same slice of the same
-- walk): the light threads of one request come in runs.
local last_x, last_req, last_b, last_yields

-- Ends a session: drops the request it kept.
function _M.reset()
    last_x, last_req, last_b = nil, nil, nil
end

-- The request a coroutine serves. lua-nginx-module keeps it in the
-- coroutine's exdata, which LuaJIT copies from the parent thread, so many
-- coroutines carry a dangling one: a timer's coroutine is created and anchored
-- when the timer is set, with the main state's exdata (init_worker's freed
-- fake request), and gets its own only when it fires; a user coroutine keeps
-- the request it was created in after that request is gone. Following such a
-- pointer killed the worker (SIGSEGV). It is followed only for a coroutine
-- that is anchored and has started (a frame on its stack), checked right
-- before the read with no yield in between: a request's cleanup unanchors all
-- of its coroutines before the request is freed, a thread is reset (no
-- frames) before lua-nginx-module caches it anchored for reuse, and a timer's
-- fake request lives until its coroutine ends. A user coroutine's pointer is
-- only compared: it shows the request of the anchored coroutine it was found
-- from when both carry the same one.
-- The check is serving(), in coroutines_walk.lua.
local req_lib               -- libnffi if the host's request functions resolved, else false
local method_p = ffi_new("const char *[1]")
local method_len = ffi_new("size_t[1]")
local uri_p = ffi_new("const char *[1]")
local uri_len = ffi_new("size_t[1]")

local function request_lib()
    if req_lib == nil then
        local ok, lib = pcall(native.lib)
        req_lib = ok and lib.nffi_request_available() == 1 and lib or false
    end
    return req_lib or nil
end

-- The address of co's request (its exdata) as a number, only to compare:
-- never followed. nil where libnffi cannot read it; 0 for none.
function _M.exdata_of(co)
    local C = request_lib()
    local p = C and ptr_of(co)
    if not p then
        return nil
    end
    return tonumber(ffi_cast("uintptr_t", C.nffi_co_exdata(p)))
end

-- { method, uri } or nil (unknown, or no client request: timers). b: the
-- walk's budget, when reads may be shared within its slice.
local function request_of(co, started, b)
    local C = request_lib()
    if not C then
        return nil
    end
    local p
    if serving(co, started) then
        p = ptr_of(co)
    else
        local root = roots[co]
        if not root or not serving(root) then
            return nil
        end
        p = ptr_of(root)
        local up = ptr_of(co)
        if not p or not up or C.nffi_co_exdata(up) ~= C.nffi_co_exdata(p) then
            return nil
        end
    end
    if not p then
        return nil
    end
    local x
    if b then
        x = C.nffi_co_exdata(p)
        if b == last_b and b.yields == last_yields and x == last_x then
            return last_req
        end
    end
    local req
    if C.nffi_co_request(p, method_p, method_len, uri_p, uri_len) == 0
       and method_p[0] ~= nil then
        local n = tonumber(uri_len[0])
        local uri = uri_p[0] ~= nil and ffi_string(uri_p[0], n < MAX_URI and n or MAX_URI) or ""
        req = { method = ffi_string(method_p[0], method_len[0]), uri = uri }
    end
    if b then
        last_x, last_req, last_b, last_yields = x, req, b, b.yields
    end
    return req
end
_M.request_of = request_of

return _M
