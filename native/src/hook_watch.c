/*
 * Watching: no hook at all while no coroutine is inside a named function.
 *
 * Where the machine allows hardware watchpoints (src/watch.c), the gated hook
 * (src/hook.c) goes one step further: while no coroutine is inside a named
 * function it is removed altogether, and a watchpoint on the first
 * instruction of each named function (at most 4) puts the call hook back,
 * from SIGTRAP, at the moment a call reads that instruction and before the
 * call is dispatched. That is sound only when no coroutine can be suspended
 * inside a named function unseen (resumed, it would run there with no call
 * event and no hook): nffi_hook_watch_begin/step walk every object of the Lua
 * heap once per set of named functions (src/heapwalk.c) and count those
 * coroutines inside. The agent asks for the switch (nffi_hook_watch_tick)
 * from its service loop, so traps come at most once per tick however often
 * the functions are called.
 * Watching proves itself first, in this worker (the self-check below): an
 * event that opens proves nothing on a machine that never delivers the trap.
 *
 * Worker thread only; on_watch_trap runs in the SIGTRAP handler on that same
 * thread, between two instructions of the interpreter.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "hook_internal.h"
#include "nffi_inspect.h"

/* watch_ok: the watchpoints are set on every named function and the heap
 * walk for this set of names is done. watch_L: a lua_State of the VM for the
 * trap handler. volatile: the trap handler clears nffi__watching. */
NFFI_HIDDEN volatile int nffi__watching;
static int watch_ok;
static lua_State *watch_L;
/* verified: the last self-check passed and nothing since could have changed
 * the answer (a new install or a new set of names resets it): watching may
 * start only then. */
static int verified;
static char watch_reason[160];

/* The self-check in progress (nffi_hook_watch_check_*): the agent's probe
 * function watched alone; line events of its first line on L counted here. */
NFFI_HIDDEN int nffi__checking;
static struct {
    const void *L;
    int line;
    int lines;
    int saved_gated;
    lua_Hook saved_hook;
    int saved_mask;
    uint64_t traps0, late0;
    struct timespec t0;
} check;

NFFI_HIDDEN void nffi__hook_why(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(watch_reason, sizeof(watch_reason), fmt, ap);
    va_end(ap);
}

NFFI_HIDDEN void nffi__check_line(lua_State *L, int line)
{
    if (line == check.line && (const void *)L == check.L)
        check.lines++;
}

/* SIGTRAP (src/watch.c): a call read a named function's first instruction.
 * The call hook goes back on, and that call's dispatch is the first to go
 * through it. Signal context: plain stores and lua_sethook only, which is
 * what LuaJIT's own profiler does from its signal handler. */
static void on_watch_trap(int late)
{
    if (!nffi__watching)
        return;
    nffi__watching = 0;
    if (!nffi__checking)
        nffi__hook_count.watch_entries++;
    /* delivered after the call went on unhooked: a coroutine may be inside
     * uncounted, so lines everywhere until the agent's next full walk */
    if (late)
        nffi__forced = 1;
    if (lua_gethook(watch_L) != NULL)
        return;                 /* another hook took over: the agent puts ours back */
    nffi__cur_mask = nffi__gated_mask();
    lua_sethook(watch_L, nffi__hook, nffi__cur_mask, 0);
}

/* Watchpoints off, the call hook (or more) back on. L: any live state. */
NFFI_HIDDEN void nffi__unwatch(lua_State *L)
{
    if (!nffi__watching)
        return;
    nffi__watch_disable();
    nffi__watching = 0;
    if (L != NULL && lua_gethook(L) == NULL) {
        nffi__cur_mask = nffi__gated_mask();
        lua_sethook(L, nffi__hook, nffi__cur_mask, 0);
    }
}

/* Sets watchpoints on the named functions and starts the heap walk. helper:
 * a coroutine of the agent's, suspended, made just before, kept until the
 * walk ends; the GC stopped by the agent until then. 0, or -1
 * (nffi_hook_watch_reason says why). */
NFFI_EXPORT int nffi_hook_watch_begin(void *helper_)
{
    lua_State *helper = helper_;
    watch_ok = 0;
    nffi__walk_cancel();
    nffi__walk_reset_stats();
    if (helper == NULL || !nffi__gated || nffi__ntargets == 0 || !nffi_hook_available()) {
        nffi__hook_why("no gated hook with named functions");
        return -1;
    }
    if (!verified) {
        nffi__hook_why("watchpoints not verified in this worker");
        return -1;
    }
    if (nffi__ntargets > NFFI_WATCH_MAX) {
        nffi__hook_why("more than %d breakpointed functions (the CPU has %d debug registers)",
                       NFFI_WATCH_MAX, NFFI_WATCH_MAX);
        return -1;
    }
    if (nffi__pc_size != 8 || lua_xmove == NULL || lua_checkstack == NULL ||
        lua_status(helper) != LUA_YIELD) {
        nffi__hook_why("heap layout not known for this LuaJIT");
        return -1;
    }
    nffi__watch_on_trap(on_watch_trap);
    int rc = nffi__watch_set(nffi__targets, nffi__ntargets);
    if (rc != 0) {
        nffi__hook_why("perf_event_open: %s", strerror(-rc));
        return -1;
    }
    return nffi__walk_begin(helper);
}

/* One slice of at most about budget_us. 0: call again (after a yield), 1:
 * done, watching may start (the coroutines found count inside), -1: failed. */
NFFI_EXPORT int nffi_hook_watch_step(void *helper, int budget_us)
{
    int rc = nffi__walk_step(helper, budget_us);
    if (rc == 1) {
        nffi__reapply(helper);
        watch_ok = 1;
        watch_reason[0] = 0;
    }
    return rc;
}

/* From the agent's service loop: with no coroutine inside, the hook goes and
 * the watchpoints come. Returns 1 when watching. */
NFFI_EXPORT int nffi_hook_watch_tick(void *L_)
{
    lua_State *L = L_;
    if (L == NULL || !nffi__gated || !watch_ok || lua_gethook == NULL)
        return 0;
    char why[sizeof(watch_reason)];
    if (nffi__watching) {
        if (nffi__watch_health(why, sizeof(why)) == 0)
            return 1;
        /* traps may have gone elsewhere since the last tick: a coroutine may
         * be inside unseen, so lines everywhere until the agent's full walk,
         * and the call hook until the agent checks again */
        nffi__unwatch(L);
        nffi__forced = 1;
        watch_ok = verified = 0;
        nffi__hook_why("%s", why);
        return 0;
    }
    if (lua_gethook(L) != nffi__hook || nffi__gated_mask() != NFFI_HOOK_MASK_OUTSIDE)
        return 0;
    if (nffi__watch_health(why, sizeof(why)) != 0) {
        watch_ok = verified = 0;
        nffi__watch_close();
        nffi__hook_why("%s", why);
        return 0;
    }
    watch_L = L;
    nffi__watching = 1;
    if (nffi__watch_enable() != 0) {
        nffi__watching = 0;
        watch_ok = 0;
        nffi__hook_why("watchpoints could not be enabled");
        return 0;
    }
    nffi__cur_mask = 0;
    lua_sethook(L, NULL, 0, 0);
    return 1;
}

NFFI_EXPORT int nffi_hook_watching(void)
{
    return nffi__watching;
}

/* Why watching is off ("" when it is possible). */
NFFI_EXPORT const char *nffi_hook_watch_reason(void)
{
    return watch_reason;
}

/* Watching ends whatever named set it was prepared for; it must prove
 * itself again before it comes back. */
NFFI_HIDDEN void nffi__watch_reset(void)
{
    nffi__walk_cancel();
    nffi__unwatch(watch_L);
    nffi__watch_close();
    watch_ok = 0;
    verified = 0;
}

static long us_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000);
}

/*
 * The self-check: the whole chain watching relies on, run on a probe function
 * of the agent's. begin watches fn's first instruction alone (it takes no
 * slot from the named functions: those are set after the check) and removes
 * the hook, as watching does; the agent then calls fn from Lua, and end
 * looks at what happened: one trap, not late, and fn's first line reported
 * to this hook, which the call hook turns on only if it saw the call enter
 * fn (a named function for the duration). Synchronous from begin to end: no
 * other coroutine runs in between, so the hook's absence meanwhile costs
 * nothing. Whatever the outcome, end puts the hook back as it was.
 */
NFFI_EXPORT int nffi_hook_watch_check_begin(void *L_, const void *fn, int line)
{
    lua_State *L = L_;
    if (L == NULL || fn == NULL || !nffi_hook_available() || nffi__pc_size != 8 ||
        nffi__proto_bc_delta == 0) {
        nffi__hook_why("closure layout of this LuaJIT not known");
        return -1;
    }
    lua_Hook h = lua_gethook(L);
    if (nffi__watching || nffi__checking || nffi__ntargets == NFFI_HOOK_MAXTARGETS ||
        (h != NULL && h != nffi__hook)) {
        nffi__hook_why("%s", h != NULL && h != nffi__hook
                       ? "another debug hook is installed" : "watching or checking already");
        return -1;
    }
    watch_ok = verified = 0;
    nffi__walk_cancel();
    uintptr_t bc = nffi__read_ptr((const char *)fn + nffi__pc_offset, nffi__pc_size);
    int rc = nffi__watch_set(&bc, 1);
    if (rc != 0) {
        nffi__hook_why("perf_event_open: %s", strerror(-rc));
        return -1;
    }
    char why[sizeof(watch_reason)];
    if (nffi__watch_health(why, sizeof(why)) != 0) {
        nffi__watch_close();
        nffi__hook_why("%s", why);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &check.t0);
    check.L = L;
    check.line = line;
    check.lines = 0;
    check.saved_gated = nffi__gated;
    check.saved_hook = h;
    check.saved_mask = h != NULL ? nffi__cur_mask : 0;
    check.traps0 = nffi_watch_traps();
    check.late0 = nffi_watch_late_traps();
    nffi__targets[nffi__ntargets++] = bc;
    nffi__rebuild_pc_bloom();
    nffi__gated = 1;
    nffi__watch_on_trap(on_watch_trap);
    watch_L = L;
    nffi__watching = 1;
    nffi__checking = 1;
    if (nffi__watch_enable() != 0) {
        nffi_hook_watch_check_end(L);
        nffi__hook_why("watchpoints could not be enabled");
        return -1;
    }
    nffi__cur_mask = 0;
    lua_sethook(L, NULL, 0, 0);
    return 0;
}

NFFI_EXPORT int nffi_hook_watch_check_end(void *L_)
{
    lua_State *L = L_;
    if (!nffi__checking || L == NULL)
        return 0;
    nffi__watching = 0;
    nffi__watch_close();
    nffi__ntargets--;           /* the probe, named last; nothing named since */
    nffi__rebuild_pc_bloom();
    nffi__forget_inside(L);
    nffi__checking = 0;
    nffi__gated = check.saved_gated;
    if (check.saved_hook == nffi__hook) {
        nffi__cur_mask = nffi__gated ? nffi__gated_mask() : check.saved_mask;
        lua_sethook(L, nffi__hook, nffi__cur_mask, 0);
    } else if (lua_gethook(L) == nffi__hook) {
        nffi__cur_mask = 0;
        lua_sethook(L, NULL, 0, 0);
    }
    uint64_t traps = nffi_watch_traps() - check.traps0;
    uint64_t late = nffi_watch_late_traps() - check.late0;
    nffi__hook_count.watch_checks++;
    nffi__hook_count.watch_check_us = us_since(&check.t0);
    if (traps == 0)
        nffi__hook_why("traps not delivered on this machine%s",
                       nffi__watch_faulty() ? " (test switch)" : "");
    else if (late != 0)
        nffi__hook_why("trap delivered late (after the call ran)");
    else if (check.lines != 1)
        nffi__hook_why("trap delivered but the call hook missed the call (%d line events)",
                       check.lines);
    else {
        watch_reason[0] = 0;
        verified = 1;
        return 1;
    }
    return 0;
}

/* Checked, set on the named functions and walked: the hook rests on
 * watchpoints whenever no coroutine is inside. */
NFFI_EXPORT int nffi_hook_watch_ok(void)
{
    return watch_ok && verified;
}
