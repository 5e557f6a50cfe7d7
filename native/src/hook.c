/*
 * The breakpoint line hook of the inspector agent (lua/nffi/inspect/breakpoints.lua).
 *
 * LuaJIT calls a line hook on every new line the interpreter runs (compiled
 * traces never call it). This one rejects a line with one bitmap test and
 * returns; only a line some breakpoint is on calls the Lua function stored in
 * the registry under NFFI_HOOK_KEY, as fn(nil, line), under lua_pcall (an error
 * is dropped: the request never sees it). In that function the breakpoint
 * frame is stack level 2, as under a debug.sethook hook. Before that, a line
 * event that only repeats its frame's line is dropped (src/hook_repeat.c), and
 * so is a hit over its breakpoint's rate (src/hook_mute.c).
 *
 * Gating. A line hook makes LuaJIT send every interpreted bytecode through the
 * hook dispatcher (several times slower), so when the agent has named the
 * breakpointed functions (nffi_hook_target) the hook starts as a call hook
 * only: a call into a named function marks that coroutine as inside and turns
 * line and return events on; the return out of its last such frame marks it
 * out again, and with no coroutine inside the hook is back to calls only.
 * Line events stay on while a coroutine is suspended inside (it may be resumed
 * there without any call event). An error that unwinds past a named frame
 * skips its return event: the agent walks the stacks of the coroutines the
 * hook marked (registry table NFFI_INSIDE_KEY, weak keys) and corrects the
 * depths (nffi_hook_resync_*), so such a leak costs time, never a hit.
 * A coroutine suspended inside a named function can also be resumed from Lua
 * (coroutine.resume, or a coroutine.wrap function) with no call event of its
 * own: the call hook sees the call of the resume function instead, walks the
 * stack of the coroutine it resumes, and turns line events on before it runs
 * when a named frame is there. So a coroutine no walk could reach (held only
 * in some table) is covered too. The resume functions are learned from a
 * suspended coroutine of the agent's (src/hook_resume.c).
 * Functions are named by their bytecode address (src/hook_layout.c). While no
 * coroutine is inside, the hook may go altogether, watchpoints standing in
 * for it (src/hook_watch.c).
 *
 * Worker thread only. All state is plain memory: written by the agent between
 * hook calls on the same thread.
 */
#include <string.h>
#include "hook_internal.h"
#include "nffi_inspect.h"

#define NFFI_HOOK_KEY "nffi.inspect.bp_hook"
#define NFFI_INSIDE_KEY "nffi.inspect.bp_inside"
#define NFFI_HOOK_MAXLINE (1 << 20)
#define NFFI_HOOK_MAXINSIDE 1024
#define NFFI_HOOK_MAXWALK 200   /* frames of a resumed coroutine looked at */

static uint8_t lines[NFFI_HOOK_MAXLINE / 8];

NFFI_HIDDEN uintptr_t nffi__targets[NFFI_HOOK_MAXTARGETS];
NFFI_HIDDEN int nffi__ntargets;

/* One bit per named pc and wrap pc: with the resume functions' own
 * (src/hook_resume.c), the call hook rejects almost every call with one test
 * of each. */
static uint64_t pc_bloom;

struct inside {
    const void *L;              /* compared, never dereferenced: it may be gone */
    int depth;                  /* named frames on that coroutine's stack */
    int seen;                   /* resync mark */
};
static struct inside inside[NFFI_HOOK_MAXINSIDE];
static int ninside;
static int overflow;            /* an inside entry was lost: lines stay on until resync */
/* lines on until a full resync (a coroutine may sit in a new target) */
NFFI_HIDDEN int nffi__forced;
NFFI_HIDDEN int nffi__gated;
NFFI_HIDDEN int nffi__cur_mask;
/* Events since the last coroutine left: switching the mask rewrites LuaJIT's
 * dispatch table, so a loop calling a named function keeps lines on, and only
 * this many events with no coroutine inside turn them off. */
#define NFFI_HOOK_IDLE_EVENTS 1000
static int idle_events;

static int is_target(uintptr_t bc)
{
    for (int i = 0; i < nffi__ntargets; i++)
        if (nffi__targets[i] == bc)
            return 1;
    return 0;
}

/* Whether the function at the top of L's stack is a named Lua function. */
static int top_is_target(lua_State *L)
{
    if (lua_iscfunction(L, -1))
        return 0;
    const char *fn = lua_topointer(L, -1);
    return fn != NULL && is_target(nffi__read_ptr(fn + nffi__pc_offset, nffi__pc_size));
}

/* Whether the function of the frame ar describes is a named one. */
static int frame_is_target(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "f", ar))
        return 0;
    int hit = top_is_target(L);
    lua_settop(L, -2);
    return hit;
}

static struct inside *find_inside(const void *L)
{
    for (int i = 0; i < ninside; i++)
        if (inside[i].L == L)
            return &inside[i];
    return NULL;
}

static void drop_inside(struct inside *e)
{
    *e = inside[--ninside];
}

NFFI_HIDDEN int nffi__is_inside(const void *co)
{
    return find_inside(co) != NULL;
}

NFFI_HIDDEN void nffi__forget_inside(const void *co)
{
    struct inside *e = find_inside(co);
    if (e != NULL)
        drop_inside(e);
}

/* The thread at the top of L's stack joins the registry's weak table of
 * coroutines the resync walks. */
NFFI_HIDDEN void nffi__anchor_top_thread(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, NFFI_INSIDE_KEY);
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    lua_settop(L, -2);
}

NFFI_HIDDEN int nffi__gated_mask(void)
{
    return (ninside > 0 || overflow || nffi__forced) ? NFFI_HOOK_MASK_INSIDE
                                                     : NFFI_HOOK_MASK_OUTSIDE;
}

NFFI_HIDDEN void nffi__apply_mask(lua_State *L)
{
    int want = nffi__gated_mask();
    if (want != nffi__cur_mask) {
        nffi__cur_mask = want;
        lua_sethook(L, nffi__hook, want, 0);
    }
}

/* A coroutine newly counted inside; past the table's size lines stay on. */
NFFI_HIDDEN void nffi__add_inside(const void *co, int depth)
{
    if (ninside == NFFI_HOOK_MAXINSIDE)
        overflow = 1;
    else
        inside[ninside++] = (struct inside){ .L = co, .depth = depth, .seen = 1 };
}

/* The coroutine enters a named function: anchored weakly for the resync. */
static void enter(lua_State *L)
{
    struct inside *e = find_inside(L);
    if (e != NULL) {
        e->depth++;
        return;
    }
    nffi__add_inside(L, 1);
    lua_pushthread(L);
    nffi__anchor_top_thread(L);
    lua_settop(L, -2);
    nffi__apply_mask(L);
}

/* Named frames on a suspended coroutine's stack. Its stack takes one value and
 * gives it back per frame: what the agent's own walk (debug.getinfo) does. */
NFFI_HIDDEN int nffi__suspended_depth(lua_State *co)
{
    lua_Debug far;
    int depth = 0;
    if (lua_status(co) != LUA_YIELD)
        return 0;
    for (int level = 0; level < NFFI_HOOK_MAXWALK && lua_getstack(co, level, &far); level++)
        depth += frame_is_target(co, &far);
    return depth;
}

NFFI_HIDDEN void nffi__rebuild_pc_bloom(void)
{
    pc_bloom = 0;
    for (int i = 0; i < nffi__ntargets; i++)
        pc_bloom |= NFFI_HOOK_BLOOM_BIT(nffi__targets[i]);
    for (int i = 0; i < nffi__resumers.nwrap_pcs; i++)
        pc_bloom |= NFFI_HOOK_BLOOM_BIT(nffi__resumers.wrap_pcs[i]);
}

/* Whether fn (pc: its pc field) may resume a coroutine: worth the slow path. */
static inline int maybe_resumer(const char *fn, uintptr_t pc)
{
    const struct nffi__resumers *r = &nffi__resumers;
    if ((r->fn_bloom & NFFI_HOOK_BLOOM_BIT(fn)) || (pc_bloom & NFFI_HOOK_BLOOM_BIT(pc)))
        return 1;
    if (pc != r->cfunc_pc || pc == 0)
        return 0;
    /* a C closure: its function pointer follows its pc field */
    uintptr_t cf = nffi__read_ptr(fn + nffi__pc_offset + nffi__pc_size, nffi__pc_size);
    for (int i = 0; i < r->nwrap_cfs; i++)
        if ((uintptr_t)r->wrap_cfs[i] == cf)
            return 1;
    return 0;
}

/* A call event: a named function entered, or a coroutine resumed. The call
 * hook runs on every call while armed, so the common case (neither a named
 * function nor a resume) must not go through lua_getinfo: once the direct
 * frame read is trusted (src/hook_layout.c) it is decided from the frame. */
static void on_call(lua_State *L, lua_Debug *ar)
{
    if (nffi__fast_state == 1) {
        const char *fn = nffi__frame_fn(L);
        uintptr_t pc = nffi__read_ptr(fn + nffi__pc_offset, 8);
        if ((pc_bloom & NFFI_HOOK_BLOOM_BIT(pc)) && is_target(pc)) {
            enter(L);
            return;
        }
        if (!maybe_resumer(fn, pc))
            return;
    }
    int top = lua_gettop(L);
    if (!lua_getinfo(L, "f", ar))
        return;
    if (nffi__fast_state == 0)
        nffi__fast_check(L, top, lua_topointer(L, -1));
    if (!lua_iscfunction(L, -1)) {
        int hit = top_is_target(L);
        lua_settop(L, top);
        if (hit)
            enter(L);
        return;
    }
    nffi__resume_call(L);
    lua_settop(L, top);
}

static void leave(lua_State *L)
{
    struct inside *e = find_inside(L);
    if (e != NULL && --e->depth <= 0) {
        drop_inside(e);
        idle_events = 0;
    }
}

NFFI_HIDDEN void nffi__hook(lua_State *L, lua_Debug *ar)
{
    int line = ar->currentline;
    nffi__hook_count.calls++;
    if (nffi__cur_mask == NFFI_HOOK_MASK_INSIDE && nffi__gated && ninside == 0 && !overflow &&
        !nffi__forced && ++idle_events > NFFI_HOOK_IDLE_EVENTS)
        nffi__apply_mask(L);
    if (ar->event == LUA_HOOKCALL) {
        /* also with calls only: a call into a recorded frame's slot ends it */
        nffi__repeat_callret(L, ar);
        if (nffi__gated)
            on_call(L, ar);
        return;
    }
    if (ar->event == LUA_HOOKRET) {
        nffi__repeat_callret(L, ar);
        if (nffi__gated && ninside > 0 && frame_is_target(L, ar))
            leave(L);
        return;
    }
    if (ar->event != LUA_HOOKLINE)
        return;
    if (nffi__checking)
        nffi__check_line(L, line);
    int is_bp_line = (unsigned)line < NFFI_HOOK_MAXLINE &&
                     (lines[(unsigned)line >> 3] & (1u << (line & 7)));
    if (nffi__repeat_line(L, ar, line, is_bp_line)) {
        nffi__hook_count.repeats++;
        return;
    }
    if (!is_bp_line || (nffi__nmutes > 0 && nffi__mute_drop(L, ar, line)))
        return;
    nffi__hook_count.matches++;
    lua_getfield(L, LUA_REGISTRYINDEX, NFFI_HOOK_KEY);
    if (lua_type(L, -1) != LUA_TFUNCTION) {
        lua_settop(L, -2);
        return;
    }
    lua_pushnil(L);
    lua_pushinteger(L, line);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        nffi__hook_count.errors++;
        lua_settop(L, -2);
    }
}

NFFI_EXPORT int nffi_hook_available(void)
{
    return lua_sethook != NULL && lua_gethook != NULL && lua_getfield != NULL &&
           lua_pushnil != NULL && lua_pushinteger != NULL && lua_pcall != NULL &&
           lua_settop != NULL && lua_type != NULL && lua_getinfo != NULL &&
           lua_topointer != NULL && lua_iscfunction != NULL && lua_pushthread != NULL &&
           lua_pushboolean != NULL && lua_rawset != NULL && lua_gettop != NULL &&
           lua_pushvalue != NULL && lua_tothread != NULL && lua_tocfunction != NULL &&
           lua_getupvalue != NULL && lua_getstack != NULL && lua_getlocal != NULL &&
           lua_status != NULL;
}

/* Line events everywhere; with gate, calls only until a named function runs. */
NFFI_EXPORT int nffi_hook_install(void *L, int gate)
{
    if (L == NULL || !nffi_hook_available() || (gate && nffi__proto_bc_delta == 0))
        return NFFI_EINVAL;
    nffi__watch_reset();
    nffi__gated = gate;
    /* repeat records are kept: a coroutine suspended on a breakpoint line
     * across this install is resumed there with no new execution. Call and
     * return events also ungated: they tell repeated line events apart (a C
     * function that yields shows nothing else) */
    nffi__cur_mask = gate ? nffi__gated_mask() : (LUA_MASKLINE | LUA_MASKRET | LUA_MASKCALL);
    lua_sethook((lua_State *)L, nffi__hook, nffi__cur_mask, 0);
    return NFFI_OK;
}

/* Names a breakpointed function: a closure or a prototype (is_proto). */
NFFI_EXPORT int nffi_hook_target(const void *obj, int is_proto)
{
    if (obj == NULL || nffi__proto_bc_delta == 0)
        return NFFI_EINVAL;
    if (nffi__ntargets == NFFI_HOOK_MAXTARGETS)
        return NFFI_EFULL;
    nffi__watch_reset();
    uintptr_t bc = nffi__bc_of(obj, is_proto);
    if (!is_target(bc))
        nffi__targets[nffi__ntargets++] = bc;
    pc_bloom |= NFFI_HOOK_BLOOM_BIT(bc);
    return NFFI_OK;
}

NFFI_EXPORT void nffi_hook_targets_clear(void)
{
    nffi__watch_reset();
    nffi__ntargets = 0;
    nffi__rebuild_pc_bloom();
}

/* Coroutines the hook counts as inside a named function (-1: lost count or forced). */
NFFI_EXPORT int nffi_hook_inside(void)
{
    return (overflow || nffi__forced) ? -1 : ninside;
}

/* Resync: begin, then set(L, depth) for every coroutine walked, then end. */
/* A resync set a coroutine the table had no room for. */
static int resync_dropped;

NFFI_EXPORT void nffi_hook_resync_begin(void)
{
    for (int i = 0; i < ninside; i++)
        inside[i].seen = 0;
    resync_dropped = 0;
}

NFFI_EXPORT void nffi_hook_resync_set(const void *co, int depth)
{
    struct inside *e = find_inside(co);
    if (depth <= 0) {
        if (e != NULL)
            drop_inside(e);
    } else if (e != NULL) {
        e->depth = depth;
        e->seen = 1;
    } else if (ninside < NFFI_HOOK_MAXINSIDE) {
        inside[ninside++] = (struct inside){ .L = co, .depth = depth, .seen = 1 };
    } else {
        resync_dropped = 1;
    }
}

/* From the agent, outside the hook: the mask follows the counts, if this
 * gated hook is still the VM's. L: any live state. */
NFFI_HIDDEN void nffi__reapply(void *L)
{
    if (L == NULL || !nffi__gated || lua_gethook == NULL)
        return;
    if (nffi__watching) {
        if (nffi__gated_mask() != NFFI_HOOK_MASK_OUTSIDE)
            nffi__unwatch((lua_State *)L);
        return;
    }
    if (lua_gethook((lua_State *)L) == nffi__hook)
        nffi__apply_mask((lua_State *)L);
}

/* Line events everywhere until a full resync: coroutines suspended inside a
 * newly named function are found only by walking every coroutine. */
NFFI_EXPORT void nffi_hook_force_lines(void *L)
{
    nffi__forced = 1;
    nffi__reapply(L);
}

/* Drops coroutines no walk saw (collected ones); full: every coroutine was
 * walked. L: any live state, for the mask. */
NFFI_EXPORT int nffi_hook_resync_end(void *L, int full)
{
    if (full)
        nffi__forced = 0;
    for (int i = 0; i < ninside;) {
        if (!inside[i].seen)
            drop_inside(&inside[i]);
        else
            i++;
    }
    /* lines stay on (and no watching) while some coroutine inside is not counted */
    overflow = resync_dropped;
    nffi__reapply(L);
    return ninside;
}

NFFI_EXPORT int nffi_hook_remove(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return NFFI_EINVAL;
    nffi__watch_reset();
    if (lua_gethook((lua_State *)L) == nffi__hook)
        lua_sethook((lua_State *)L, NULL, 0, 0);
    ninside = 0;
    overflow = 0;
    nffi__forced = 0;
    nffi__gated = 0;
    nffi__cur_mask = 0;
    nffi__nmutes = 0;
    nffi__repeat_clear();       /* from here no event is seen: none can be trusted */
    return NFFI_OK;
}

NFFI_EXPORT int nffi_hook_installed(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return 0;
    lua_Hook h = lua_gethook((lua_State *)L);
    return h == nffi__hook || (nffi__watching && h == NULL);
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

/* Lines forced on until a full walk (after an arm, or a late watchpoint trap). */
NFFI_EXPORT int nffi_hook_forced(void)
{
    return nffi__forced;
}

NFFI_EXPORT int nffi_hook_mask(void *L)
{
    if (L == NULL || lua_gethookmask == NULL)
        return -1;
    return lua_gethookmask((lua_State *)L);
}
