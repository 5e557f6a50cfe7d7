/*
 * For `npm run bench -- breakpoints`: C hooks that do nothing but count their
 * calls, so the bench can show what LuaJIT's own hook paths cost a handler: a
 * call hook (the floor under any hook gated by calls) and a line hook (the
 * floor under a breakpoint on a line that runs), and check that the hook it
 * timed was called. Loaded by bench/lua/bench_bp.lua with ffi.load; lua_*
 * come from the host process.
 */
#include <lua.h>

#pragma weak lua_sethook

static unsigned long long calls;

static void empty(lua_State *L, lua_Debug *ar)
{
    (void)L;
    (void)ar;
    calls++;
}

static int set(void *L, int on, int mask)
{
    if (L == NULL || lua_sethook == NULL)
        return -1;
    lua_sethook((lua_State *)L, on ? empty : NULL, on ? mask : 0, 0);
    return 0;
}

int bench_empty_hook(void *L, int on)
{
    return set(L, on, LUA_MASKCALL);
}

int bench_empty_line_hook(void *L, int on)
{
    return set(L, on, LUA_MASKLINE);
}

/* Calls of either hook since the library was loaded. */
unsigned long long bench_empty_hook_calls(void)
{
    return calls;
}
