/* The breakpoint hook (src/hook*.c) driven by a real LuaJIT. A program of its
 * own: it links libluajit, so the hook's weak lua_* resolve as they do in
 * nginx (test_nffi checks the library without them). The chunk runs
 * interpreted (jit.off): compiled traces never call a hook, and what is
 * counted here must not depend on what the JIT compiles. */
#include <string.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "nffi_inspect.h"
#include "check.h"

/* Line numbers matter: BP_LINE is the loop body of f, which calls g. */
#define BP_LINE 7
static const char chunk[] =
    "jit.off()\n"
    "local hits, fail = 0, false\n"
    "local function g(i) return i end\n"
    "local function f(n)\n"
    "    local s = 0\n"
    "    for i = 1, n do\n"
    "        s = s + g(i)\n"                        /* BP_LINE */
    "    end\n"
    "    return s\n"
    "end\n"
    "debug.getregistry()['nffi.inspect.bp_hook'] = function()\n"
    "    hits = hits + 1\n"
    "    if fail then error('dropped by the hook') end\n"
    "end\n"
    "local function make_probe() return function() return 1 end end\n"
    "local learner = coroutine.create(function(resume_std) coroutine.yield() end)\n"
    "coroutine.resume(learner, coroutine.resume)\n"
    "local function resumes(n)\n"
    "    local co = coroutine.create(function() while true do coroutine.yield() end end)\n"
    "    for _ = 1, n do coroutine.resume(co) end\n"
    "end\n"
    "return f, function() return hits end, function(v) fail = v end, resumes,\n"
    "       learner, make_probe(), require('jit.util').funck(make_probe, -1)\n";
/* The chunk's results, at these stack slots. */
enum { F = 1, HITS, FAIL, RESUMES, LEARNER, PROBE, PROTO };

/* Every field is written (two reads over different fills agree: the counters
 * have no getters of their own), and each state field is what its getter says. */
static void check_fields(void *L)
{
    nffi_hook_stats s, t;
    memset(&s, 0xa5, sizeof(s));
    memset(&t, 0x5a, sizeof(t));
    CHECK(nffi_hook_get_stats(L, &s) == NFFI_OK);
    CHECK(nffi_hook_get_stats(L, &t) == NFFI_OK);
    CHECK(s.calls == t.calls);
    CHECK(s.matches == t.matches);
    CHECK(s.errors == t.errors);
    CHECK(s.resumes == t.resumes);
    CHECK(s.repeats == t.repeats);
    CHECK(s.muted == t.muted);
    CHECK(s.watch_entries == t.watch_entries);
    CHECK(s.watch_checks == t.watch_checks);
    CHECK(s.watch_check_us == t.watch_check_us);
    CHECK(s.heap_objects == t.heap_objects);
    CHECK(s.heap_walk_us == t.heap_walk_us);
    CHECK(s.heap_slices == t.heap_slices);
    CHECK(s.heap_slice_max_us == t.heap_slice_max_us);
    CHECK(s.watch_traps == nffi_watch_traps());
    CHECK(s.watch_late == nffi_watch_late_traps());
    CHECK(s.watch_reason == nffi_hook_watch_reason());
    CHECK(s.mask == nffi_hook_mask(L));
    CHECK(s.inside == nffi_hook_inside());
    CHECK(s.fast == nffi_hook_fast());
    CHECK(s.watching == nffi_hook_watching());
    CHECK(s.watch_ok == nffi_hook_watch_ok());
}

static nffi_hook_stats stats(void *L)
{
    nffi_hook_stats s;
    nffi_hook_get_stats(L, &s);
    return s;
}

/* Calls f(n) from C; its result, or -1 when it raised. */
static long call_f(lua_State *L, int n)
{
    lua_pushvalue(L, F);
    lua_pushinteger(L, n);
    long r = lua_pcall(L, 1, 1, 0) == 0 ? (long)lua_tointeger(L, -1) : -1;
    lua_settop(L, PROTO);
    return r;
}

static long lua_int(lua_State *L, int fn)
{
    lua_pushvalue(L, fn);
    lua_call(L, 0, 1);
    long r = (long)lua_tointeger(L, -1);
    lua_settop(L, PROTO);
    return r;
}

static void set_fail(lua_State *L, int on)
{
    lua_pushvalue(L, FAIL);
    lua_pushboolean(L, on);
    lua_call(L, 1, 0);
}

/* Ungated: every line event; a breakpoint line hit once per execution, its
 * repeat (back from g) dropped, a raising callback counted. */
static void test_hook_lines(lua_State *L)
{
    nffi_hook_stats s0 = stats(L);
    CHECK(nffi_hook_set_line(BP_LINE, 1) == NFFI_OK);
    CHECK(nffi_hook_install(L, 0) == NFFI_OK && nffi_hook_installed(L) == 1);
    CHECK(call_f(L, 10) == 55);
    nffi_hook_stats s = stats(L);
    CHECK(lua_int(L, HITS) == 10);
    CHECK(s.matches - s0.matches == 10);
    CHECK(s.repeats - s0.repeats == 10);
    CHECK(s.calls - s0.calls > 40);             /* lines, calls and returns of f and g */
    CHECK(s.errors == s0.errors);
    CHECK(s.mask == (LUA_MASKLINE | LUA_MASKRET | LUA_MASKCALL));
    check_fields(L);
    set_fail(L, 1);
    CHECK(call_f(L, 3) == 6);                   /* the request never sees the error */
    set_fail(L, 0);
    CHECK(stats(L).errors - s.errors == 3);
    check_fields(L);
}

/* A muted line: hits dropped in C, counted, no Lua called. */
static void test_hook_mute(lua_State *L)
{
    nffi_hook_stats s0 = stats(L);
    long hits0 = lua_int(L, HITS);
    CHECK(nffi_hook_mute(BP_LINE, (double)time(NULL) + 3600) == NFFI_OK);
    CHECK(nffi_hook_mute_fn(BP_LINE, lua_topointer(L, F), 0) == NFFI_OK);
    CHECK(call_f(L, 5) == 15);
    nffi_hook_stats s = stats(L);
    CHECK(s.muted - s0.muted == 5 && s.matches == s0.matches && lua_int(L, HITS) == hits0);
    CHECK(nffi_hook_mute_take(BP_LINE) == 5 && nffi_hook_mute_take(BP_LINE) == 0);
    check_fields(L);
    nffi_hook_unmute(BP_LINE);
}

/* Gated on f: inside only while f runs; the call hook learns to read frames
 * directly and looks into the coroutines coroutine.resume resumes. */
static void test_hook_gated(lua_State *L)
{
    CHECK(nffi_hook_learn_resumers((void *)lua_tothread(L, LEARNER)) == 1);
    CHECK(nffi_hook_target(lua_topointer(L, F), 0) == NFFI_OK);
    CHECK(nffi_hook_install(L, 1) == NFFI_OK);
    nffi_hook_stats s0 = stats(L);
    CHECK(s0.mask == LUA_MASKCALL && s0.inside == 0);
    CHECK(call_f(L, 100) == 5050);              /* g's calls: the frame read is checked */
    nffi_hook_stats s = stats(L);
    CHECK(s.matches - s0.matches == 100 && s.inside == 0 && s.fast != 0);
    lua_pushvalue(L, RESUMES);
    lua_pushinteger(L, 4);
    lua_call(L, 1, 0);
    CHECK(stats(L).resumes - s.resumes == 4);
    check_fields(L);
    CHECK(nffi_hook_remove(L) == NFFI_OK && nffi_hook_installed(L) == 0);
    nffi_hook_targets_clear();
    nffi_hook_clear_lines();
    CHECK(stats(L).mask == 0);
    check_fields(L);
}

int passed, failed;

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    nffi_hook_stats s;
    CHECK(nffi_hook_get_stats(NULL, NULL) == NFFI_EINVAL);
    CHECK(nffi_hook_get_stats(NULL, &s) == NFFI_OK && s.mask == -1 && s.watching == 0);
    check_fields(NULL);
    CHECK(nffi_hook_available() == 1);
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, chunk, sizeof(chunk) - 1, "=hook_test") != 0 ||
        lua_pcall(L, 0, PROTO, 0) != 0) {
        fprintf(stderr, "hook test chunk: %s\n", lua_tostring(L, -1));
        CHECK(0);
        lua_close(L);
        return 1;
    }
    CHECK(nffi_hook_calibrate(lua_topointer(L, PROBE), lua_topointer(L, PROTO)) == 1);
    test_hook_lines(L);
    test_hook_mute(L);
    test_hook_gated(L);
    lua_close(L);
    /* not the "N passed, M failed" line of test_nffi: one per build is counted */
    printf("hook test: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
