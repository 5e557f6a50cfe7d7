/*
 * Coroutines resumed from Lua into a named function (the gate: src/hook.c).
 *
 * A coroutine suspended inside a named function can be resumed
 * (coroutine.resume, or a coroutine.wrap function) with no call event of its
 * own, and then runs there with lines off. The call hook sees the call of the
 * resume function instead: it walks the stack of the coroutine about to be
 * resumed and counts it inside, lines on, before it runs. The resume functions
 * are learned once from a coroutine of the agent's whose locals hold them,
 * whatever the host replaced coroutine.* with.
 *
 * Worker thread only.
 */
#include <string.h>
#include "hook_internal.h"
#include "nffi_inspect.h"

NFFI_HIDDEN struct nffi__resumers nffi__resumers;

/* The thread at the top of L's stack is about to be resumed by L: when it is
 * suspended inside a named function, it counts as inside before it runs. */
static void resuming_top_thread(lua_State *L)
{
    lua_State *co = lua_tothread(L, -1);
    if (co == NULL || co == (lua_State *)L || nffi__is_inside(co))
        return;
    nffi__hook_count.resumes++;
    int depth = nffi__suspended_depth(co);
    if (depth == 0)
        return;
    nffi__add_inside(co, depth);
    nffi__anchor_top_thread(L);
    nffi__apply_mask(L);
}

/* Whether the C function at the top of L's stack (object fn) is a wrap closure. */
static int is_wrap(lua_State *L, const void *fn)
{
    const struct nffi__resumers *r = &nffi__resumers;
    lua_CFunction cf = lua_tocfunction(L, -1);
    if (cf != NULL) {
        for (int i = 0; i < r->nwrap_cfs; i++)
            if (r->wrap_cfs[i] == cf)
                return 1;
        return 0;
    }
    if (r->nwrap_pcs == 0 || fn == NULL)
        return 0;
    uintptr_t pc = nffi__read_ptr((const char *)fn + nffi__pc_offset, nffi__pc_size);
    for (int i = 0; i < r->nwrap_pcs; i++)
        if (r->wrap_pcs[i] == pc)
            return 1;
    return 0;
}

NFFI_HIDDEN void nffi__resume_call(lua_State *L)
{
    const void *fn = lua_topointer(L, -1);
    for (int i = 0; i < nffi__resumers.nfns; i++) {
        if (nffi__resumers.fns[i] == fn) {
            /* its frame's first slot: the coroutine argument */
            lua_pushvalue(L, 1);
            resuming_top_thread(L);
            return;
        }
    }
    if (is_wrap(L, fn) && lua_getupvalue(L, -1, 1) != NULL)
        resuming_top_thread(L);
}

static void learn_wrap(lua_State *co)
{
    struct nffi__resumers *r = &nffi__resumers;
    lua_CFunction cf = lua_tocfunction(co, -1);
    const void *fn = lua_topointer(co, -1);
    if (cf != NULL && r->nwrap_cfs < NFFI_HOOK_MAXRESUMERS) {
        r->wrap_cfs[r->nwrap_cfs++] = cf;
        if (fn != NULL && nffi__pc_offset != 0)
            r->cfunc_pc = nffi__read_ptr((const char *)fn + nffi__pc_offset, nffi__pc_size);
    } else if (cf == NULL && fn != NULL && nffi__pc_offset != 0 &&
               r->nwrap_pcs < NFFI_HOOK_MAXRESUMERS)
        r->wrap_pcs[r->nwrap_pcs++] =
            nffi__read_ptr((const char *)fn + nffi__pc_offset, nffi__pc_size);
}

/*
 * co: a coroutine of the agent's, suspended (not running) in a Lua function
 * whose locals are the resume functions: named resume_* (they resume their
 * first argument) or wrapped_* (a coroutine.wrap closure: every closure with
 * its C function resumes its first upvalue). Returns how many were learned.
 */
NFFI_EXPORT int nffi_hook_learn_resumers(void *co_)
{
    struct nffi__resumers *r = &nffi__resumers;
    lua_State *co = co_;
    lua_Debug far;
    if (co == NULL || !nffi_hook_available() || lua_status(co) != LUA_YIELD)
        return 0;
    r->nfns = r->nwrap_cfs = r->nwrap_pcs = 0;
    r->cfunc_pc = 0;
    r->fn_bloom = 0;
    for (int level = 0; level < 4 && lua_getstack(co, level, &far); level++) {
        if (!lua_getinfo(co, "S", &far) || strcmp(far.what, "Lua") != 0)
            continue;
        const char *name;
        for (int n = 1; (name = lua_getlocal(co, &far, n)) != NULL; n++) {
            if (lua_iscfunction(co, -1)) {
                if (strncmp(name, "resume_", 7) == 0 && r->nfns < NFFI_HOOK_MAXRESUMERS)
                    r->fns[r->nfns++] = lua_topointer(co, -1);
                else if (strncmp(name, "wrapped_", 8) == 0)
                    learn_wrap(co);
            }
            lua_settop(co, -2);
        }
        break;
    }
    for (int i = 0; i < r->nfns; i++)
        r->fn_bloom |= NFFI_HOOK_BLOOM_BIT(r->fns[i]);
    nffi__rebuild_pc_bloom();
    return r->nfns + r->nwrap_cfs + r->nwrap_pcs;
}
