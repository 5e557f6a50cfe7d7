-- The runtimes of the nffi binding (init.lua) in this worker: where each is
-- kept (by "lib&cfg", in load order, and its private state), how its library
-- is found and opened, and its start in the worker on first use.
local ffi = require "ffi"
local native = require "nffi.native"
local fastwake = require "nffi.fastwake"

local ngx = ngx
local get_phase = ngx.get_phase
local worker_pid = ngx.worker.pid
local ffi_new = ffi.new
local ffi_load = ffi.load
local setmetatable = setmetatable
local tonumber = tonumber
local tostring = tostring
local pcall = pcall
local ipairs = ipairs
local str_find = string.find
local str_gmatch = string.gmatch
local str_match = string.match
local str_gsub = string.gsub
local package = package

local _M = { _VERSION = "0.1.0" }

local runtimes = {}       -- key "lib&cfg" -> runtime object
local runtime_list = {}   -- in load order, for stats
local state_of = setmetatable({}, { __mode = "k" })  -- runtime object -> private state
_M.runtimes, _M.list, _M.state_of = runtimes, runtime_list, state_of

local function lib_candidates(lib)
    if str_find(lib, "/", 1, true) then
        return { lib }
    end
    local names = { "lib" .. lib .. ".so", lib .. ".so", lib }
    local dirs = { native.examples_dir }
    for tmpl in str_gmatch(package.cpath, "[^;]+") do
        local dir = str_match(tmpl, "^(.*)/[^/]*%?[^/]*$")
        if dir then
            dirs[#dirs + 1] = dir
        end
    end
    local out = {}
    for _, dir in ipairs(dirs) do
        for _, name in ipairs(names) do
            out[#out + 1] = dir .. "/" .. name
        end
    end
    return out
end

-- The name ffi.load hands dlopen for lib (LuaJIT's rule for a bare name).
local function dl_name(lib)
    if str_find(lib, "/", 1, true) then
        return lib
    end
    if not str_find(lib, ".", 1, true) then
        lib = lib .. ".so"
    end
    if not str_find(lib, "^lib") then
        lib = "lib" .. lib
    end
    return lib
end

-- The runtime's threads run the library's code until the process ends, but
-- lua_close at worker exit finalizes the clib and dlcloses it: pinned, it stays.
local function pinned(handle, name)
    native.lib().nffi_pin_library(name)
    return handle
end

-- Like lua-resty-ffi: a path, or a name searched in our examples dir and the
-- package.cpath dirs before the dynamic linker's own search. On failure: nil,
-- our message, and ffi.load's own (what lua-resty-ffi's ngx.load_ffi raises).
local function open_library(lib, is_global)
    for _, path in ipairs(lib_candidates(lib)) do
        if native.exists(path) then
            local ok, handle = pcall(ffi_load, path, is_global)
            if not ok then
                return nil, handle, handle
            end
            return pinned(handle, path), path
        end
    end
    local ok, handle = pcall(ffi_load, lib, is_global)
    if not ok then
        return nil, "cannot load runtime library '" .. lib .. "': " .. tostring(handle), handle
    end
    return pinned(handle, dl_name(lib)), lib
end

local function index(handle, sym)
    return handle[sym]
end

-- The init symbols, in the order a loader looks for them: lua-resty-ffi's
-- first, or lua-resty-nonblocking-ffi's (INIT_NONBLOCKING_FIRST).
local INIT_FFI_FIRST = { "libffi_init", "lib_nonblocking_ffi_init" }
local INIT_NONBLOCKING_FIRST = { "lib_nonblocking_ffi_init", "libffi_init" }
_M.INIT_FFI_FIRST, _M.INIT_NONBLOCKING_FIRST = INIT_FFI_FIRST, INIT_NONBLOCKING_FIRST

-- The runtime's init function, or nil and why the first symbol of `order` is
-- missing (the dynamic linker's words, as lua-resty-ffi raises them).
local function find_init(handle, order)
    order = order or INIT_FFI_FIRST
    local why
    for _, sym in ipairs(order) do
        local ok, fn = pcall(index, handle, sym)
        if ok and fn then
            return fn
        end
        why = why or str_gsub(tostring(fn), "^[^:]*:%d+: ", "", 1)
    end
    return nil, why
end

-- Threads of the runtime library start here, in the worker, never in the
-- master: init_by_lua runs before fork and threads do not survive it.
-- true, or nil, why, and the init function's rc when that is why.
local function start_runtime(st)
    if st.rt and st.pid == worker_pid() then
        return true
    end
    if get_phase() == "init" then
        return nil, "runtime not started yet: it starts in the worker on first use"
    end
    local C = native.lib()
    local rt = C.nffi_runtime_new(st.name, st.max_queue)
    if rt == nil then
        return nil, "out of memory"
    end
    if st.spin_us then
        C.nffi_runtime_set_poll_spin(rt, st.spin_us)
    end
    if st.instrument == false then
        -- no task exists yet, so this cannot fail
        C.nffi_runtime_set_instrumented(rt, 0)
    end
    local cfg_buf
    if st.cfg then
        -- a writable copy: the ABI takes char *, and runtimes may not keep it
        cfg_buf = ffi_new("char[?]", #st.cfg + 1, st.cfg)
    end
    local rc = st.init(cfg_buf, rt)
    if rc ~= 0 then
        C.nffi_runtime_finish(rt)
        rc = tonumber(rc)
        -- the message for nffi.load and calls, the bare rc for ngx.load_ffi
        return nil, "runtime init failed with rc " .. rc, rc
    end
    st.rt = rt
    st.pid = worker_pid()
    if not st.wake_forced then
        fastwake.ensure()   -- once per worker: the eventfd path, or why not
    end
    return true
end
_M.open_library, _M.find_init, _M.start_runtime = open_library, find_init, start_runtime

local function short_name(lib)
    local base = str_match(lib, "([^/]+)$") or lib
    return str_match(base, "^lib(.-)%.so") or str_match(base, "^(.-)%.so") or base
end

-- The inspector addresses runtimes by name, so names stay unique per worker.
local function unique_name(name)
    local taken = {}
    for _, st in ipairs(runtime_list) do
        taken[st.name] = true
    end
    if not taken[name] then
        return name
    end
    local i = 2
    while taken[name .. "#" .. i] do
        i = i + 1
    end
    return name .. "#" .. i
end
_M.short_name, _M.unique_name = short_name, unique_name

return _M
