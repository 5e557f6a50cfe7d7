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
 * Functions are named by their bytecode address: a closure's pc field, found
 * by nffi_hook_calibrate on a closure and its prototype of the agent's own,
 * or a prototype's address plus the header size that calibration measured.
 *
 * Worker thread only. All state is plain memory: written by the agent between
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
#pragma weak lua_gethookmask
#pragma weak lua_getinfo
#pragma weak lua_topointer
#pragma weak lua_iscfunction
#pragma weak lua_pushthread
#pragma weak lua_pushboolean
#pragma weak lua_rawset

#define NFFI_HOOK_KEY "nffi.inspect.bp_hook"
#define NFFI_INSIDE_KEY "nffi.inspect.bp_inside"
#define NFFI_HOOK_MAXLINE (1 << 20)
#define NFFI_HOOK_MAXTARGETS 256
#define NFFI_HOOK_MAXINSIDE 1024
#define MASK_OUTSIDE LUA_MASKCALL
#define MASK_INSIDE (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE)

static uint8_t lines[NFFI_HOOK_MAXLINE / 8];
static uint64_t calls;
static uint64_t matches;
static uint64_t errors;

static void hook(lua_State *L, lua_Debug *ar);

/* Calibration: where a Lua closure keeps its bytecode address, and how far a
 * prototype's bytecode starts from the prototype (0: not calibrated). */
static size_t pc_offset;
static size_t pc_size;
static uintptr_t proto_bc_delta;

static uintptr_t targets[NFFI_HOOK_MAXTARGETS];
static int ntargets;

struct inside {
    const void *L;              /* compared, never dereferenced: it may be gone */
    int depth;                  /* named frames on that coroutine's stack */
    int seen;                   /* resync mark */
};
static struct inside inside[NFFI_HOOK_MAXINSIDE];
static int ninside;
static int overflow;            /* an inside entry was lost: lines stay on until resync */
static int forced;              /* lines on until a full resync (a coroutine may sit in a new target) */
static int gated;
static int cur_mask;
/* Events since the last coroutine left: switching the mask rewrites LuaJIT's
 * dispatch table, so a loop calling a named function keeps lines on, and only
 * this many events with no coroutine inside turn them off. */
#define NFFI_HOOK_IDLE_EVENTS 1000
static int idle_events;

static uintptr_t read_ptr(const void *at, size_t size)
{
    if (size == 8) {
        uint64_t v;
        memcpy(&v, at, 8);
        return (uintptr_t)v;
    }
    uint32_t v;
    memcpy(&v, at, 4);
    return (uintptr_t)v;
}

static int is_target(uintptr_t bc)
{
    for (int i = 0; i < ntargets; i++)
        if (targets[i] == bc)
            return 1;
    return 0;
}

/* Whether the function of the frame ar describes is a named one. */
static int frame_is_target(lua_State *L, lua_Debug *ar)
{
    if (!lua_getinfo(L, "f", ar))
        return 0;
    int hit = 0;
    if (!lua_iscfunction(L, -1)) {
        const char *fn = lua_topointer(L, -1);
        hit = fn != NULL && is_target(read_ptr(fn + pc_offset, pc_size));
    }
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

static int gated_mask(void)
{
    return (ninside > 0 || overflow || forced) ? MASK_INSIDE : MASK_OUTSIDE;
}

static void apply_mask(lua_State *L)
{
    int want = gated_mask();
    if (want != cur_mask) {
        cur_mask = want;
        lua_sethook(L, hook, want, 0);
    }
}

/* The coroutine enters a named function: anchored weakly for the resync. */
static void enter(lua_State *L)
{
    struct inside *e = find_inside(L);
    if (e != NULL) {
        e->depth++;
        return;
    }
    if (ninside == NFFI_HOOK_MAXINSIDE) {
        overflow = 1;
    } else {
        inside[ninside++] = (struct inside){ .L = L, .depth = 1, .seen = 1 };
    }
    lua_getfield(L, LUA_REGISTRYINDEX, NFFI_INSIDE_KEY);
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushthread(L);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    lua_settop(L, -2);
    apply_mask(L);
}

static void leave(lua_State *L)
{
    struct inside *e = find_inside(L);
    if (e != NULL && --e->depth <= 0) {
        drop_inside(e);
        idle_events = 0;
    }
}

static void hook(lua_State *L, lua_Debug *ar)
{
    int line = ar->currentline;
    calls++;
    if (cur_mask == MASK_INSIDE && gated && ninside == 0 && !overflow && !forced &&
        ++idle_events > NFFI_HOOK_IDLE_EVENTS)
        apply_mask(L);
    if (ar->event == LUA_HOOKCALL) {
        if (gated && frame_is_target(L, ar))
            enter(L);
        return;
    }
    if (ar->event == LUA_HOOKRET) {
        if (gated && ninside > 0 && frame_is_target(L, ar))
            leave(L);
        return;
    }
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
           lua_settop != NULL && lua_type != NULL && lua_getinfo != NULL &&
           lua_topointer != NULL && lua_iscfunction != NULL && lua_pushthread != NULL &&
           lua_pushboolean != NULL && lua_rawset != NULL;
}

/* Line events everywhere; with gate, calls only until a named function runs. */
NFFI_EXPORT int nffi_hook_install(void *L, int gate)
{
    if (L == NULL || !nffi_hook_available() || (gate && proto_bc_delta == 0))
        return NFFI_EINVAL;
    gated = gate;
    cur_mask = gate ? gated_mask() : LUA_MASKLINE;
    lua_sethook((lua_State *)L, hook, cur_mask, 0);
    return NFFI_OK;
}

/*
 * fn is a Lua closure made from proto (both live): finds the closure's pc field
 * (GC64 and 32-bit reference layouts) and the prototype header size. Returns
 * 1 when both are found, 0 when this LuaJIT's layout is not one we know.
 */
NFFI_EXPORT int nffi_hook_calibrate(const void *fn, const void *proto)
{
    static const size_t offsets[][2] = { { 32, 8 }, { 16, 4 } };
    if (fn == NULL || proto == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        uintptr_t bc = read_ptr((const char *)fn + offsets[i][0], offsets[i][1]);
        uintptr_t p = (uintptr_t)proto;
        if (bc > p && bc - p <= 256 && (bc - p) % 4 == 0) {
            pc_offset = offsets[i][0];
            pc_size = offsets[i][1];
            proto_bc_delta = bc - p;
            return 1;
        }
    }
    return 0;
}

/* Names a breakpointed function: a closure or a prototype (is_proto). */
NFFI_EXPORT int nffi_hook_target(const void *obj, int is_proto)
{
    if (obj == NULL || proto_bc_delta == 0)
        return NFFI_EINVAL;
    if (ntargets == NFFI_HOOK_MAXTARGETS)
        return NFFI_EFULL;
    uintptr_t bc = is_proto ? (uintptr_t)obj + proto_bc_delta
                            : read_ptr((const char *)obj + pc_offset, pc_size);
    if (!is_target(bc))
        targets[ntargets++] = bc;
    return NFFI_OK;
}

NFFI_EXPORT void nffi_hook_targets_clear(void)
{
    ntargets = 0;
}

/* Coroutines the hook counts as inside a named function (-1: lost count or forced). */
NFFI_EXPORT int nffi_hook_inside(void)
{
    return (overflow || forced) ? -1 : ninside;
}

/* Resync: begin, then set(L, depth) for every coroutine walked, then end. */
NFFI_EXPORT void nffi_hook_resync_begin(void)
{
    for (int i = 0; i < ninside; i++)
        inside[i].seen = 0;
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
    }
}

/* From the agent, outside the hook: the mask follows the counts, if this
 * gated hook is still the VM's. L: any live state. */
static void reapply(void *L)
{
    if (L != NULL && gated && lua_gethook != NULL && lua_gethook((lua_State *)L) == hook)
        apply_mask((lua_State *)L);
}

/* Line events everywhere until a full resync: coroutines suspended inside a
 * newly named function are found only by walking every coroutine. */
NFFI_EXPORT void nffi_hook_force_lines(void *L)
{
    forced = 1;
    reapply(L);
}

/* Drops coroutines no walk saw (collected ones); full: every coroutine was
 * walked. L: any live state, for the mask. */
NFFI_EXPORT int nffi_hook_resync_end(void *L, int full)
{
    if (full)
        forced = 0;
    for (int i = 0; i < ninside;) {
        if (!inside[i].seen)
            drop_inside(&inside[i]);
        else
            i++;
    }
    overflow = 0;
    reapply(L);
    return ninside;
}

NFFI_EXPORT int nffi_hook_remove(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return NFFI_EINVAL;
    if (lua_gethook((lua_State *)L) == hook)
        lua_sethook((lua_State *)L, NULL, 0, 0);
    ninside = 0;
    overflow = 0;
    forced = 0;
    gated = 0;
    cur_mask = 0;
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

NFFI_EXPORT uint64_t nffi_hook_calls(void)
{
    return calls;
}

NFFI_EXPORT int nffi_hook_mask(void *L)
{
    if (L == NULL || lua_gethookmask == NULL)
        return -1;
    return lua_gethookmask((lua_State *)L);
}
