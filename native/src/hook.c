/*
 * The breakpoint line hook of the inspector agent (lua/nffi/inspect/breakpoints.lua).
 *
 * LuaJIT calls a line hook on every new line the interpreter runs (compiled
 * traces never call it). This one rejects a line with one bitmap test and
 * returns; only a line some breakpoint is on calls the Lua function stored in
 * the registry under NFFI_HOOK_KEY, as fn(nil, line), under lua_pcall (an error
 * is dropped: the request never sees it). In that function the breakpoint
 * frame is stack level 2, as under a debug.sethook hook.
 *
 * lua_* come from the host process (nginx's lua module and its libluajit):
 * referenced weakly, so libnffi still loads, and its tests still link, without
 * them; nffi_hook_available() says whether they resolved.
 *
 * Worker thread only. The bitmap is plain memory: written by the agent between
 * hook calls on the same thread.
 */
#include <string.h>
#include <lua.h>
#include "nffi_internal.h"
#include "nffi.h"

#pragma weak lua_sethook
#pragma weak lua_gethook
#pragma weak lua_getfield
#pragma weak lua_pushnil
#pragma weak lua_pushinteger
#pragma weak lua_pcall
#pragma weak lua_settop
#pragma weak lua_type

#define NFFI_HOOK_KEY "nffi.inspect.bp_hook"
#define NFFI_HOOK_MAXLINE (1 << 20)

static uint8_t lines[NFFI_HOOK_MAXLINE / 8];
static uint64_t matches;
static uint64_t errors;

static void hook(lua_State *L, lua_Debug *ar)
{
    int line = ar->currentline;
    if (ar->event != LUA_HOOKLINE || (unsigned)line >= NFFI_HOOK_MAXLINE ||
        !(lines[(unsigned)line >> 3] & (1u << (line & 7))))
        return;
    matches++;
    lua_getfield(L, LUA_REGISTRYINDEX, NFFI_HOOK_KEY);
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        lua_settop(L, -2);
        return;
    }
    lua_pushnil(L);
    lua_pushinteger(L, line);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        errors++;
        lua_settop(L, -2);
    }
}

NFFI_EXPORT int nffi_hook_available(void)
{
    return lua_sethook != NULL && lua_gethook != NULL && lua_getfield != NULL &&
           lua_pushnil != NULL && lua_pushinteger != NULL && lua_pcall != NULL &&
           lua_settop != NULL && lua_type != NULL;
}

NFFI_EXPORT int nffi_hook_install(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return NFFI_EINVAL;
    lua_sethook((lua_State *)L, hook, LUA_MASKLINE, 0);
    return NFFI_OK;
}

NFFI_EXPORT int nffi_hook_remove(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return NFFI_EINVAL;
    if (lua_gethook((lua_State *)L) == hook)
        lua_sethook((lua_State *)L, NULL, 0, 0);
    return NFFI_OK;
}

NFFI_EXPORT int nffi_hook_installed(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return 0;
    return lua_gethook((lua_State *)L) == hook;
}

NFFI_EXPORT int nffi_hook_set_line(int line, int on)
{
    if (line < 0 || line >= NFFI_HOOK_MAXLINE)
        return NFFI_EINVAL;
    if (on)
        lines[line >> 3] |= (uint8_t)(1u << (line & 7));
    else
        lines[line >> 3] &= (uint8_t)~(1u << (line & 7));
    return NFFI_OK;
}

NFFI_EXPORT void nffi_hook_clear_lines(void)
{
    memset(lines, 0, sizeof(lines));
}

NFFI_EXPORT uint64_t nffi_hook_matches(void)
{
    return matches;
}

NFFI_EXPORT uint64_t nffi_hook_errors(void)
{
    return errors;
}
