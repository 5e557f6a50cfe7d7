-- Finds and loads libnffi once per process, RTLD_GLOBAL, so that runtime
-- libraries loaded afterwards resolve ngx_http_lua_ffi_task_poll & co. to it.
local ffi = require "ffi"
local consts = require "nffi.cdefs"

local debug_getinfo = debug.getinfo
local io_open = io.open
local error = error
local tostring = tostring
local tonumber = tonumber
local ffi_cast = ffi.cast

local _M = { _VERSION = "0.1.0", consts = consts }

-- this file lives in <root>/lua/nffi/; the build output in <root>/native/build/
local function repo_root()
    local src = debug_getinfo(1, "S").source
    local root = src:match("^@(.*)/lua/nffi/native%.lua$")
    if not root then
        error("nffi: cannot locate the nffi checkout from " .. src)
    end
    return root
end

local root = repo_root()
_M.root = root
_M.native_dir = root .. "/native/build"
_M.examples_dir = root .. "/native/build/examples"

local variants = {
    default = "libnffi.so",
    noinst = "libnffi_noinst.so",
}

local library_path = _M.native_dir .. "/" .. variants.default
local C

local function exists(path)
    local f = io_open(path, "rb")
    if f then
        f:close()
        return true
    end
    return false
end
_M.exists = exists

-- Picks the build (e.g. "noinst" for benchmarks) before the first load.
function _M.use(variant)
    local file = variants[variant]
    if not file then
        error("nffi: unknown library variant " .. tostring(variant), 2)
    end
    local path = _M.native_dir .. "/" .. file
    if C and path ~= library_path then
        return nil, "libnffi already loaded from " .. library_path
    end
    library_path = path
    return true
end

function _M.lib()
    if C then
        return C
    end
    if not exists(library_path) then
        error("nffi: " .. library_path .. " is missing; build it with `make -C native`")
    end
    C = ffi.load(library_path, true)
    return C
end

function _M.path()
    return library_path
end

-- Address of a GC object (thread, Lua function, prototype) from its tostring,
-- for the libnffi functions that take one; nil for anything else. Never NULL:
-- handing NULL to lua_* kills the worker.
function _M.ptr_of(obj)
    local addr = obj and tostring(obj):match("^%a+: 0x(%x+)$")
    local n = addr and tonumber(addr, 16)
    if not n or n == 0 then
        return nil
    end
    return ffi_cast("void *", ffi_cast("uintptr_t", n))
end

return _M
