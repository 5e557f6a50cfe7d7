/*
 * For `npm run bench -- breakpoints`: a C call hook that does nothing, so the
 * bench can show what LuaJIT's own call-hook path costs a handler (the floor
 * under any hook gated by calls). Loaded by bench/lua/bench_bp.lua with
 * ffi.load; lua_* come from the host process.
 */
#include <lua.h>

#pragma weak lua_sethook

static void empty(lua_State *L, lua_Debug *ar)
{
    (void)L;
    (void)ar;
}

int bench_empty_hook(void *L, int on)
{
    if (L == NULL || lua_sethook == NULL)
        return -1;
    lua_sethook((lua_State *)L, on ? empty : NULL, on ? LUA_MASKCALL : 0, 0);
    return 0;
}
