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
local str_match = string.match
local package = package

local _M = { _VERSION = "0.1.0", consts = consts }

local function exists(path)
    local f = io_open(path, "rb")
    if f then
        f:close()
        return true
    end
    return false
end
_M.exists = exists

-- Where libnffi and the example runtimes live, from where this file lives:
--   a checkout:      <root>/lua/nffi/native.lua, <root>/native/build/
--   a luarocks tree: <tree>/share/lua/5.1/nffi/native.lua, <tree>/lib/lua/5.1/nffi/
-- (the rockspec installs the libraries there), else the first nffi/libnffi.so
-- on package.cpath (lua_package_cpath): hand-made layouts, trees whose Lua and
-- C dirs differ. Resolved once, at require; nginx sets package.cpath before
-- any Lua runs. Not found is no error at require: callers that can do
-- without libnffi pcall lib(), which says what is missing where.
local function locate()
    local src = debug_getinfo(1, "S").source
    local root = str_match(src, "^@(.*)/lua/nffi/native%.lua$")
    if root then
        return root .. "/native/build", "checkout", root
    end
    local tree, ver = str_match(src, "^@(.*)/share/lua/([^/]+)/nffi/native%.lua$")
    local tree_dir = tree and tree .. "/lib/lua/" .. ver .. "/nffi"
    if tree_dir and exists(tree_dir .. "/libnffi.so") then
        return tree_dir, "luarocks", tree
    end
    local found = package.searchpath("nffi.libnffi", package.cpath)
    if found then
        return str_match(found, "^(.*)/[^/]*$") or ".", "cpath"
    end
    local looked = "nffi/libnffi.so on package.cpath \"" .. package.cpath .. "\""
    if tree_dir then
        return tree_dir, nil, tree, tree_dir .. " and " .. looked
    end
    return str_match(src, "^@(.*)/[^/]*$") or ".", nil, nil, looked
end

local native_dir, layout, root, looked = locate()
_M.native_dir = native_dir
_M.examples_dir = native_dir .. "/examples"
_M.layout = layout      -- "checkout", "luarocks", "cpath"; nil when libnffi was not found
_M.root = root          -- the checkout or the luarocks tree

local variants = {
    default = "libnffi.so",
    noinst = "libnffi_noinst.so",
}

local library_path = native_dir .. "/" .. variants.default
local C

-- Picks the build (e.g. "noinst" for benchmarks) before the first load.
function _M.use(variant)
    local file = variants[variant]
    if not file then
        error("nffi: unknown library variant " .. tostring(variant), 2)
    end
    local path = native_dir .. "/" .. file
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
        if layout == "checkout" then
            error("nffi: " .. library_path .. " is missing; build it with `make -C native`")
        end
        error("nffi: " .. library_path .. " is missing (looked for " .. (looked or library_path)
              .. "); install the rock with `luarocks make --tree DIR`, then lua_package_cpath"
              .. " \"DIR/lib/lua/5.1/?.so;;\" (nffi-inspect config --luarocks-tree DIR)")
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
