/*
 * The heap walk behind watching (src/hook_watch.c): with the hook removed, a
 * coroutine suspended inside a named function would, once resumed, run there
 * with no call event and no hook. So before watching starts, every object of
 * the Lua heap is looked at once per set of named functions, and the
 * coroutines suspended inside one are counted inside (src/hook.c).
 *
 * Every object of the VM is on one list (global_State.gc.root), threads
 * included, whoever references them. Layout of GC64 LuaJIT 2.1 (since
 * mid-2020): lua_State.glref at 16; global_State.gc.threshold at 24,
 * gc.currentwhite at 32, gc.root at 40 and gc.estimate at 96; every object
 * starts with nextgc, marked, gct. Checked before it is trusted: the threshold
 * of the stopped GC reads 2^47, every pointer is a plausible object address
 * before it is followed, every gct a heap object's, and the helper coroutine
 * the agent made just before the walk is met near the head of the list (new
 * objects go first).
 * The walk goes in slices, the agent yielding between them with the GC
 * stopped (collectgarbage "stop"), so no object is freed under the cursor:
 * objects made meanwhile go to the head, behind it. Any GC work between
 * slices (an explicit collectgarbage call sets the threshold; a sweep that
 * frees anything lowers the estimate) ends the walk as failed, before the
 * cursor is touched again.
 * Meanwhile the call hook is on: a coroutine that enters or is resumed into a
 * named function during the walk is counted by it.
 *
 * Worker thread only.
 */
#include <time.h>
#include "hook_internal.h"
#include "nffi.h"

#define HEAP_L_GLREF 16
#define HEAP_G_THRESHOLD 24
#define HEAP_G_WHITE 32
#define HEAP_G_ROOT 40
#define HEAP_G_ESTIMATE 96
#define HEAP_MAX_MEM ((uint64_t)1 << 47)   /* threshold of a stopped GC (LJ_MAX_MEM64) */
#define HEAP_GCT_UPVAL 5
#define HEAP_GCT_THREAD 6
#define HEAP_GCT_UDATA 12
#define HEAP_NEAR_HEAD 4096
#define HEAP_MAXFOUND 256

static struct {
    lua_State *helper;          /* suspended; its stack holds the coroutines found */
    const char *g;
    const char *cursor;         /* next object to look at; NULL: at the end */
    uint64_t threshold;         /* the stopped GC's, checked before every slice */
    uint64_t estimate;          /* lowered by any sweep that frees, reset by a full cycle */
    uint8_t dead_white;
    int top, found, met_helper, active;
    long n;
    int depths[HEAP_MAXFOUND];
} walk;

/* The worker thread's CPU time: a slice is what the walk costs the worker,
 * whatever else the machine runs meanwhile. */
static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A GC object's address as LuaJIT's GC64 allocator gives it: 8-aligned, in the
 * 47-bit user space. Checked before the walk follows any pointer. */
static int heap_ptr_ok(uintptr_t p)
{
    return p != 0 && (p & 7) == 0 && p < HEAP_MAX_MEM;
}

static int walk_fail(const char *why)
{
    nffi__hook_why("%s (%ld objects, %ld us in %ld slices)", why, walk.n,
                   nffi__hook_count.heap_walk_us, nffi__hook_count.heap_slices);
    if (walk.active)
        lua_settop(walk.helper, walk.top);
    walk.active = 0;
    nffi__watch_close();
    return -1;
}

/* Coroutines found suspended inside a named function join the inside counts
 * and the weak table the resync walks. */
static void walk_finish(void)
{
    lua_State *helper = walk.helper;
    for (int i = 0; i < walk.found; i++) {
        lua_State *co = lua_tothread(helper, walk.top + 1 + i);
        if (co == NULL || nffi__is_inside(co))
            continue;
        nffi__add_inside(co, walk.depths[i]);
        lua_pushvalue(helper, walk.top + 1 + i);
        nffi__anchor_top_thread(helper);
        lua_settop(helper, -2);
    }
    lua_settop(helper, walk.top);
    walk.active = 0;
}

/* One slice of the walk. 0: more to do, 1: done, -1: failed. */
static int walk_slice(int budget_us)
{
    struct nffi__hook_counts *c = &nffi__hook_count;
    const char *g = walk.g;
    if (nffi__read_ptr(g + HEAP_G_THRESHOLD, 8) != walk.threshold ||
        nffi__read_ptr(g + HEAP_G_ESTIMATE, 8) != walk.estimate)
        return walk_fail("the GC ran during the heap walk");
    if (lua_status(walk.helper) != LUA_YIELD)
        return walk_fail("the walk's helper coroutine is gone");
    c->heap_slices++;
    int64_t t0 = cpu_us();
    const char *o = walk.cursor;
    int rc = 1;
    for (; o != NULL; o = (const char *)nffi__read_ptr(o, 8), walk.n++) {
        if (!heap_ptr_ok((uintptr_t)o))
            return walk_fail("heap layout not recognised");
        uint8_t gct = (uint8_t)o[9];
        if (gct < HEAP_GCT_UPVAL || gct > HEAP_GCT_UDATA)
            return walk_fail("heap layout not recognised");
        if (o == (const char *)walk.helper)
            walk.met_helper = 1;
        else if (!walk.met_helper && walk.n >= HEAP_NEAR_HEAD)
            return walk_fail("heap layout not recognised");
        if ((walk.n & 255) == 255 && cpu_us() - t0 > budget_us) {
            rc = 0;
            break;
        }
        if (gct != HEAP_GCT_THREAD || (o[8] & walk.dead_white) != 0 || o == (const char *)walk.helper)
            continue;
        lua_State *co = (lua_State *)(uintptr_t)o;
        int depth = nffi__suspended_depth(co);
        if (depth == 0)
            continue;
        if (walk.found == HEAP_MAXFOUND || !lua_checkstack(walk.helper, 1))
            return walk_fail("too many coroutines inside");
        lua_pushthread(co);
        lua_xmove(co, walk.helper, 1);  /* alive from here on: the helper's stack holds it */
        walk.depths[walk.found++] = depth;
    }
    walk.cursor = o;
    long spent = (long)(cpu_us() - t0);
    c->heap_walk_us += spent;
    if (spent > c->heap_slice_max_us)
        c->heap_slice_max_us = spent;
    c->heap_objects = walk.n;
    if (rc == 0)
        return 0;
    if (!walk.met_helper)
        return walk_fail("heap layout not recognised");
    walk_finish();
    return 1;
}

/* An earlier walk ends where it is. Its helper may be gone: the helper's
 * stack is left as is. */
NFFI_HIDDEN void nffi__walk_cancel(void)
{
    walk.active = 0;
}

/* The last walk's figures go (a new walk starts). */
NFFI_HIDDEN void nffi__walk_reset_stats(void)
{
    struct nffi__hook_counts *c = &nffi__hook_count;
    c->heap_objects = c->heap_walk_us = c->heap_slices = c->heap_slice_max_us = 0;
}

/* Starts the walk: the watchpoints are set already, closed here if the heap
 * is not one this walk knows. helper: a coroutine of the agent's, suspended,
 * made just before, kept until the walk ends; the GC stopped by the agent
 * until then. 0, or -1 (reason given). */
NFFI_HIDDEN int nffi__walk_begin(lua_State *helper)
{
    walk.helper = helper;
    walk.g = (const char *)nffi__read_ptr((const char *)helper + HEAP_L_GLREF, 8);
    walk.threshold = nffi__read_ptr(walk.g + HEAP_G_THRESHOLD, 8);
    /* the agent stopped the GC (or the application had): a threshold at its
     * maximum is what tells this layout from older ones (before mid-2020
     * global_State began with the string table) before anything is followed */
    if (walk.threshold != HEAP_MAX_MEM || !heap_ptr_ok(nffi__read_ptr(walk.g + HEAP_G_ROOT, 8))) {
        nffi__watch_close();
        nffi__hook_why("heap layout not recognised (or the GC is running)");
        return -1;
    }
    walk.estimate = nffi__read_ptr(walk.g + HEAP_G_ESTIMATE, 8);
    walk.dead_white = (uint8_t)((walk.g[HEAP_G_WHITE] ^ 3) & 3);
    walk.cursor = (const char *)nffi__read_ptr(walk.g + HEAP_G_ROOT, 8);
    walk.top = lua_gettop(helper);
    walk.found = walk.met_helper = 0;
    walk.n = 0;
    walk.active = 1;
    nffi__hook_why("heap walk under way");
    return 0;
}

/* One slice of at most about budget_us. 0: call again (after a yield), 1:
 * done (the coroutines found count inside), -1: failed, or no walk of this
 * helper under way. */
NFFI_HIDDEN int nffi__walk_step(lua_State *helper, int budget_us)
{
    if (!walk.active || helper != walk.helper)
        return -1;
    return walk_slice(budget_us);
}
