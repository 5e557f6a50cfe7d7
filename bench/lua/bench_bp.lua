-- Handlers for `npm run bench -- breakpoints`: one JIT-heavy, one forced to run
-- interpreted, a function nobody calls (where the "armed, never hit" breakpoint
-- goes), a frame with 10 locals for the per-hit cost, a loop running one line
-- 100 times per request (a rate-limited breakpoint's drops), and the
-- lua-resty-inspect way (a Lua line hook calling debug.getinfo on every line) to
-- compare with. /counters tells the bench what actually ran (hook calls, the
-- VM's hook, JIT state), so no figure stands for something that did not run.
local ngx = ngx
local native = require "nffi.native"

local debug_sethook = debug.sethook
local debug_getinfo = debug.getinfo
local tonumber = tonumber
local str_sub = string.sub
local jit = require "jit"
local jutil = require "jit.util"

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

-- The hot line: 100 runs of one line per request. Counted per request, so the
-- bench knows how many times the line ran (100 x hot_runs) whatever wrk says.
local HOT_N = 100
local hot_runs = 0
local function hot(n)
    local acc = 0
    for i = 1, n do
        acc = acc + i * 3 % 7 -- BP-HOT
    end
    return acc
end

function _M.hot_line()
    hot_runs = hot_runs + 1
    ngx.say(hot(HOT_N))
end

-- the floor under a breakpoint on the hot line: JIT off for hot (as arming
-- does; the flush drops any trace that inlined it) or back on
function _M.hot_jit(on)
    if on then
        jit.on(hot, true)
    else
        jit.off(hot, true)
    end
    jit.flush()
    ngx.say(on and "on" or "off")
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

-- LuaJIT's own hook paths with a hook that only counts its calls: a call
-- hook (the floor under the gated hook) or a line hook (the floor under a
-- breakpoint on a line that runs: bench/native/empty_hook.c)
local EMPTY_CDEF = [[
int bench_empty_hook(void *L, int on);
int bench_empty_line_hook(void *L, int on);
unsigned long long bench_empty_hook_calls(void);
]]
local function empty_hook()
    return bench_lib("empty_hook", EMPTY_CDEF)
end

function _M.floor(on)
    local L = native.ptr_of(coroutine.running())
    ngx.say(empty_hook().bench_empty_hook(L, on and 1 or 0) == 0 and "ok" or "failed")
end

function _M.floor_line(on)
    local L = native.ptr_of(coroutine.running())
    ngx.say(empty_hook().bench_empty_line_hook(L, on and 1 or 0) == 0 and "ok" or "failed")
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
-- (and counts, so the bench sees it ran)
local resty_calls = 0
function _M.resty_inspect(on)
    if on then
        debug_sethook(function(_, line)
            resty_calls = resty_calls + 1
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

-- The loop instructions of fn as LuaJIT names them: FORL (counting towards a
-- trace), IFORL (JIT off for fn), JFORL (a compiled trace runs the loop).
local function loop_ops(fn)
    local ok, vmdef = pcall(require, "jit.vmdef")
    if not ok then
        return "unknown"
    end
    local ops = {}
    for pc = 1, 100000 do
        local ins = jutil.funcbc(fn, pc)
        if not ins then
            break
        end
        local op = str_sub(vmdef.bcnames, 6 * (ins % 256) + 1, 6 * (ins % 256) + 6):gsub(" ", "")
        if op:find("FORL", 1, true) or op:find("LOOP", 1, true) then
            ops[#ops + 1] = op
        end
    end
    return table.concat(ops, ",")
end

-- JIT off again for interp_work, before each of the bench's runs of /interp:
-- something may have turned it back on (the agent's JIT restore when a
-- breakpoint goes turns on every function whose trace recording aborted while
-- armed, this one included). Answers its loop instructions before: IFORL
-- while it stayed off, FORL or JFORL when it had been turned on.
function _M.interp_jit_off()
    local was = loop_ops(interp_work)
    jit.off(interp_work, true)
    ngx.say(was)
end

-- What ran in this worker, for the bench's checks: hook calls counted by the
-- bench's own hooks, the VM's hook now (debug.gethook: "external hook" for a
-- C hook, and its mask), the hot line's runs, and the JIT state of the loops
-- that must stay interpreted.
function _M.counters()
    local fn, mask = debug.gethook()
    local json = require "cjson.safe"
    local empty = bench_libs.empty_hook
    ngx.say(json.encode({
        resty_calls = resty_calls,
        empty_calls = empty and tonumber(empty.bench_empty_hook_calls()) or 0,
        hook = fn ~= nil and { kind = type(fn) == "function" and "lua" or tostring(fn),
                               mask = mask } or nil,
        hot_runs = hot_runs,
        hot_n = HOT_N,
        interp_loops = loop_ops(interp_work),
        hot_loops = loop_ops(hot),
    }))
end

return _M
