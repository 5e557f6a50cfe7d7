-- Handlers for `npm run bench -- breakpoints`: one JIT-heavy, one forced to run
-- interpreted, a function nobody calls (where the "armed, never hit" breakpoint
-- goes), a frame with 10 locals for the per-hit cost, and the lua-resty-inspect
-- way (a Lua line hook calling debug.getinfo on every line) to compare with.
local ngx = ngx
local native = require "nffi.native"

local debug_sethook = debug.sethook
local debug_getinfo = debug.getinfo
local tonumber = tonumber
local str_sub = string.sub
local jit = require "jit"

local _M = {}

local function mix(a, b)
    return (a * 31 + b) % 1000003
end

-- compiled: a numeric loop and a small callee LuaJIT inlines
function _M.jit_heavy()
    local acc = 0
    for i = 1, 20000 do
        acc = mix(acc, i)
    end
    ngx.say(acc)
end

local function interp_work()
    local t = {}
    for i = 1, 200 do
        t[i] = i * 2
    end
    local acc = 0
    for i = 1, #t do
        acc = mix(acc, t[i])
    end
    return acc
end
jit.off(interp_work, true)

-- interpreted: jit.off keeps every line of interp_work in the interpreter
function _M.interp_heavy()
    ngx.say(interp_work())
end

function _M.never_called()
    local x = 1 -- BP-NEVER
    return x
end

local function ten_locals(a, b)
    local c, d, e = a + 1, b + 2, a * b
    local f, g = "user", { n = a }
    local h, i, j = true, nil, 3.5
    return c + d + e + g.n + j + #f + (h and 1 or 0) + (i or 0) -- BP-HIT
end

-- per-call time of ten_locals, in µs, timed inside the worker
function _M.hit_loop()
    local n = tonumber(ngx.var.arg_n) or 2000
    local C = native.lib()
    local t0 = C.nffi_now_ns()
    local acc = 0
    for k = 1, n do
        acc = acc + ten_locals(k, 2)
    end
    ngx.say(tonumber(C.nffi_now_ns() - t0) / n / 1000, " ", acc)
end

-- the agent's C hook gated by calls (default) or sending every line (on = false)
function _M.gate(on)
    require("nffi.inspect.breakpoints").gate = on
    ngx.say(on and "gated" or "ungated")
end

-- the gated hook with or without hardware watchpoints (watch = false: a call hook)
function _M.watch(on)
    require("nffi.inspect.breakpoints").watch = on
    ngx.say(on and "watch" or "no watch")
end

-- the bench's own C helpers (native/build/libbench_*.so), loaded once and kept:
-- a collected ffi.load handle unloads the library, and its state with it
local bench_libs = {}
local function bench_lib(name, cdef)
    local lib = bench_libs[name]
    if not lib then
        local ffi = require "ffi"
        ffi.cdef(cdef)
        lib = ffi.load(native.native_dir .. "/libbench_" .. name .. ".so")
        bench_libs[name] = lib
    end
    return lib
end

-- LuaJIT's own call-hook path with a hook that does nothing: the floor under
-- the gated hook (bench/native/empty_hook.c)
function _M.floor(on)
    local lib = bench_lib("empty_hook", "int bench_empty_hook(void *L, int on);")
    local L = native.ptr_of(coroutine.running())
    ngx.say(lib.bench_empty_hook(L, on and 1 or 0) == 0 and "ok" or "failed")
end

-- a hardware watchpoint on an untouched word, no hook: what the platform
-- charges for a debug register in use (bench/native/idle_watchpoint.c)
function _M.watchpoint(on)
    local lib = bench_lib("idle_watchpoint", "int bench_idle_watchpoint(int on);")
    ngx.say(lib.bench_idle_watchpoint(on and 1 or 0) >= 0 and "ok" or "refused")
end

-- n small tables kept for good: a big heap for the heap walk behind watching
local big_heap = {}
function _M.big_heap(n)
    for i = #big_heap + 1, n do
        big_heap[i] = { i }
    end
    ngx.say(#big_heap)
end

local hook_source = "@" .. str_sub(debug_getinfo(1, "S").source, 2)

-- lua-resty-inspect's approach: every line runs Lua that asks debug.getinfo
function _M.resty_inspect(on)
    if on then
        debug_sethook(function(_, line)
            local info = debug_getinfo(2, "S")
            if info.source == hook_source and line == -1 then
                ngx.log(ngx.ERR, "never")
            end
        end, "l")
    else
        debug_sethook()
    end
    ngx.say(on and "on" or "off")
end

return _M
