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
 * A coroutine suspended inside a named function can also be resumed from Lua
 * (coroutine.resume, or a coroutine.wrap function) with no call event of its
 * own: the call hook sees the call of the resume function instead, walks the
 * stack of the coroutine it resumes, and turns line events on before it runs
 * when a named frame is there. So a coroutine no walk could reach (held only
 * in some table) is covered too. The resume functions are learned from a
 * suspended coroutine of the agent's (nffi_hook_learn_resumers).
 * Watching. Where the machine allows hardware watchpoints (src/watch.c), the
 * hook goes one step further: while no coroutine is inside a named function
 * it is removed altogether, and a watchpoint on the first instruction of each
 * named function (at most 4) puts the call hook back, from SIGTRAP, at the
 * moment a call reads that instruction and before the call is dispatched.
 * That is sound only when no coroutine can be suspended inside a named
 * function unseen (resumed, it would run there with no call event and no
 * hook): nffi_hook_watch_begin/step walk every object of the Lua heap once per
 * set of named functions and count those coroutines inside. The agent asks
 * for the switch (nffi_hook_watch_tick) from its service loop, so traps come
 * at most once per tick however often the functions are called.
 * Functions are named by their bytecode address: a closure's pc field, found
 * by nffi_hook_calibrate on a closure and its prototype of the agent's own,
 * or a prototype's address plus the header size that calibration measured.
 *
 * Worker thread only. All state is plain memory: written by the agent between
 * hook calls on the same thread.
 */
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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
#pragma weak lua_gettop
#pragma weak lua_pushvalue
#pragma weak lua_tothread
#pragma weak lua_tocfunction
#pragma weak lua_getupvalue
#pragma weak lua_getstack
#pragma weak lua_getlocal
#pragma weak lua_status
#pragma weak lua_xmove
#pragma weak lua_checkstack

#define NFFI_HOOK_KEY "nffi.inspect.bp_hook"
#define NFFI_INSIDE_KEY "nffi.inspect.bp_inside"
#define NFFI_HOOK_MAXLINE (1 << 20)
#define NFFI_HOOK_MAXTARGETS 256
#define NFFI_HOOK_MAXINSIDE 1024
#define NFFI_HOOK_MAXRESUMERS 8
#define NFFI_HOOK_MAXWALK 200   /* frames of a resumed coroutine looked at */
#define MASK_OUTSIDE LUA_MASKCALL
#define MASK_INSIDE (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE)

static uint8_t lines[NFFI_HOOK_MAXLINE / 8];
static uint64_t calls;
static uint64_t matches;
static uint64_t errors;

static void hook(lua_State *L, lua_Debug *ar);
static void watch_reset(void);
static int fast_state;          /* the direct frame read (see on_call) is trusted when 1 */
static const char *frame_fn(lua_State *L);

/* Calibration: where a Lua closure keeps its bytecode address, and how far a
 * prototype's bytecode starts from the prototype (0: not calibrated). */
static size_t pc_offset;
static size_t pc_size;
static uintptr_t proto_bc_delta;

static uintptr_t targets[NFFI_HOOK_MAXTARGETS];
static int ntargets;

/* Functions that resume their first argument (coroutine.resume: lua-nginx-
 * module's and LuaJIT's), by object; and coroutine.wrap closures, which resume
 * their first upvalue: lua-nginx-module's by their C function, LuaJIT's (a
 * fast function, no C function to compare) by their pc field, which is the
 * same for every closure of one fast function. */
static const void *resume_fns[NFFI_HOOK_MAXRESUMERS];
static int nresume_fns;
static lua_CFunction wrap_cfs[NFFI_HOOK_MAXRESUMERS];
static int nwrap_cfs;
static uintptr_t wrap_pcs[NFFI_HOOK_MAXRESUMERS];
static int nwrap_pcs;
/* The pc field every C function (not fast function) shares: a wrap closure
 * of lua-nginx-module's is one of those, told apart by its C function. */
static uintptr_t cfunc_pc;

/* One bit per named pc and wrap pc, and per resume function object: the call
 * hook rejects almost every call with one test of each. */
static uint64_t pc_bloom;
static uint64_t fn_bloom;
#define BLOOM_BIT(p) ((uint64_t)1 << (((uintptr_t)(p) >> 3) & 63))
static uint64_t resumes_seen;

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

/* Watching (see above): the hook removed, watchpoints on. watch_ok: the
 * watchpoints are set on every named function and the heap walk for this
 * set of names is done. watch_L: a lua_State of the VM for the trap handler. */
static volatile int watching;
static int watch_ok;
static lua_State *watch_L;
static uint64_t watch_entries;
/* verified: the last self-check passed and nothing since could have changed
 * the answer (a new install or a new set of names resets it): watching may
 * start only then. */
static int verified;

/* The self-check in progress (nffi_hook_watch_check_*): the agent's probe
 * function watched alone; line events of its first line on L counted here. */
static struct {
    int active;
    const void *L;
    int line;
    int lines;
    int saved_gated;
    lua_Hook saved_hook;
    int saved_mask;
    uint64_t traps0, late0;
    struct timespec t0;
} check;
static uint64_t watch_checks;
static long watch_check_us;

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

/* Whether the function at the top of L's stack is a named Lua function. */
static int top_is_target(lua_State *L)
{
    if (lua_iscfunction(L, -1))
        return 0;
    const char *fn = lua_topointer(L, -1);
    return fn != NULL && is_target(read_ptr(fn + pc_offset, pc_size));
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

/* The thread at the top of L's stack joins the registry's weak table of
 * coroutines the resync walks. */
static void anchor_top_thread(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, NFFI_INSIDE_KEY);
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushvalue(L, -2);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    lua_settop(L, -2);
}

/*
 * Repeated line events. LuaJIT decides "new line" by comparing the pc with the
 * last pc its C frame saved, which anything run since overwrites: a Lua
 * callee's instructions, the call hook (which clears it for the line hook),
 * and a resume, which starts a new C frame with no pc saved. Back from a call,
 * or resumed after a yield, a frame's line is reported again: a loop body
 * ending in `count(x)` would hit twice per iteration, and `reply(rt:slow(req))`
 * once when the call starts and again when the response resumes the
 * coroutine there, whatever ran meanwhile. Neither is a new execution.
 * So for each frame on a breakpoint line we keep its slot (ar->i_ci), function
 * and line, and whether an event above the slot (a call, or a callee's line or
 * return) came since the frame's own last line event: the same line again in
 * the same slot and function after one is a repeat. The frame's next line
 * event on any other line, its return, any event below it (an unwind) and a
 * call into its slot (a tail call, or a new frame after an unwind nothing
 * showed) end the record.
 * Records are per coroutine, a stack of frames (NFFI_HOOK_LINEFRAMES in the
 * table, more on the heap: a recursion through a breakpoint line) in an
 * open-addressed table keyed by lua_State: no other coroutine evicts them and
 * neither a mask switch nor another install resets them, so a coroutine
 * suspended on a breakpoint line is known as such when it is resumed there,
 * however long it slept and whatever the hook did meanwhile. That takes every
 * call event (a C function that yields shows no other event), which every
 * mask of this hook has. A dead coroutine's records go when its lua_State is
 * reused (the first call of the new one is into a slot at or below them), or
 * all of them with nffi_hook_remove. A full table (or no memory) costs the
 * dedupe of one frame (a second hit), never a hit.
 */
#define NFFI_HOOK_LINEREC_BITS 12
#define NFFI_HOOK_LINEREC (1 << NFFI_HOOK_LINEREC_BITS)
#define NFFI_HOOK_LINEREC_MAX (NFFI_HOOK_LINEREC / 4 * 3)  /* probe runs stay short */
#define NFFI_HOOK_LINEFRAMES 4          /* per coroutine in the table; more: heap */
#define NFFI_HOOK_LINEFRAMES_MAX 65536  /* past it the outermost give way */
struct lineframe {
    const void *fn;             /* compared, never dereferenced */
    int ci;                     /* ar->i_ci: the frame's stack slot */
    int line;
    int left;                   /* an event above the frame came since its last line */
};
struct linerec {
    int n;                      /* frames, outermost first */
    int cap;                    /* of more */
    struct lineframe *more;     /* all the frames once they outgrow f (malloc) */
    struct lineframe f[NFFI_HOOK_LINEFRAMES];
};
static const void *linekeys[NFFI_HOOK_LINEREC];  /* lua_State: compared, never dereferenced */
static struct linerec linerecs[NFFI_HOOK_LINEREC];
static int nlinerecs;
static uint64_t repeats;

static unsigned linerec_home(const void *L)
{
    return (unsigned)(((uint64_t)(uintptr_t)L * 0x9E3779B97F4A7C15ull) >>
                      (64 - NFFI_HOOK_LINEREC_BITS));
}

static struct linerec *linerec_of(const void *L)
{
    if (nlinerecs == 0)
        return NULL;
    for (unsigned i = linerec_home(L);; i = (i + 1) & (NFFI_HOOK_LINEREC - 1)) {
        if (linekeys[i] == L)
            return &linerecs[i];
        if (linekeys[i] == NULL)
            return NULL;
    }
}

static struct linerec *linerec_add(const void *L)
{
    if (nlinerecs >= NFFI_HOOK_LINEREC_MAX)
        return NULL;
    unsigned i = linerec_home(L);
    while (linekeys[i] != NULL)
        i = (i + 1) & (NFFI_HOOK_LINEREC - 1);
    linekeys[i] = L;
    linerecs[i].n = 0;
    linerecs[i].cap = 0;
    linerecs[i].more = NULL;
    nlinerecs++;
    return &linerecs[i];
}

static struct lineframe *linerec_frames(struct linerec *r)
{
    return r->more != NULL ? r->more : r->f;
}

/* 1 when one more frame fits (the frames go to the heap past the table's). */
static int linerec_room(struct linerec *r)
{
    int cap = r->more != NULL ? r->cap : NFFI_HOOK_LINEFRAMES;
    if (r->n < cap)
        return 1;
    if (cap >= NFFI_HOOK_LINEFRAMES_MAX)
        return 0;
    struct lineframe *more = malloc(sizeof(*more) * (size_t)cap * 2);
    if (more == NULL)
        return 0;
    memcpy(more, linerec_frames(r), sizeof(*more) * (size_t)r->n);
    free(r->more);
    r->more = more;
    r->cap = cap * 2;
    return 1;
}

/* The coroutine's last record went: out of the table by backward shift (the
 * keys after it in its probe run move up; no tombstones). */
static void linerec_drop(struct linerec *r)
{
    unsigned i = (unsigned)(r - linerecs), j = i;
    free(r->more);
    linekeys[i] = NULL;
    nlinerecs--;
    for (;;) {
        j = (j + 1) & (NFFI_HOOK_LINEREC - 1);
        if (linekeys[j] == NULL)
            return;
        unsigned home = linerec_home(linekeys[j]);
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;           /* its home lies after the hole: it stays */
        linekeys[i] = linekeys[j];
        linerecs[i] = linerecs[j];
        linekeys[j] = NULL;
        i = j;
    }
}

static void linerec_clear(void)
{
    for (int i = 0; i < NFFI_HOOK_LINEREC && nlinerecs > 0; i++) {
        if (linekeys[i] != NULL) {
            free(linerecs[i].more);
            linekeys[i] = NULL;
            nlinerecs--;
        }
    }
}

/* The function of the frame the hook reports on: read from the frame where
 * that reading is trusted (a hook event's L->base is the frame's base), else
 * through lua_getinfo. */
static const void *event_fn(lua_State *L, lua_Debug *ar)
{
    if (fast_state == 1)
        return frame_fn(L);
    if (!lua_getinfo(L, "f", ar))
        return NULL;
    const void *fn = lua_topointer(L, -1);
    lua_settop(L, -2);
    return fn;
}

/* A call (into slot ar->i_ci) or a return (out of it): the frames recorded at
 * or above that slot are gone or replaced, and the one below has a callee. */
static void linerec_callret(lua_State *L, lua_Debug *ar)
{
    struct linerec *r = linerec_of(L);
    if (r == NULL)
        return;
    struct lineframe *f = linerec_frames(r);
    while (r->n > 0 && f[r->n - 1].ci >= ar->i_ci)
        r->n--;
    if (r->n == 0)
        linerec_drop(r);
    else
        f[r->n - 1].left = 1;
}

/* 1 when this line event only repeats the line its frame is on. */
static int linerec_line(lua_State *L, lua_Debug *ar, int line, int is_bp_line)
{
    struct linerec *r = linerec_of(L);
    int ci = ar->i_ci;
    if (r != NULL) {
        struct lineframe *f = linerec_frames(r);
        while (r->n > 0 && f[r->n - 1].ci > ci)
            r->n--;             /* returned, or unwound */
        struct lineframe *top = r->n > 0 ? &f[r->n - 1] : NULL;
        if (top != NULL && top->ci == ci) {
            if (top->left && top->line == line &&
                (!is_bp_line || top->fn == event_fn(L, ar))) {
                top->left = 0;
                return 1;
            }
            r->n--;             /* on another line, or on this one again */
        } else if (top != NULL) {
            top->left = 1;      /* a callee's line */
        }
        if (r->n == 0 && !is_bp_line) {
            linerec_drop(r);
            return 0;
        }
    }
    if (!is_bp_line || (r == NULL && (r = linerec_add(L)) == NULL))
        return 0;
    if (!linerec_room(r)) {
        struct lineframe *f = linerec_frames(r);
        memmove(f, f + 1, sizeof(*f) * (size_t)(r->n - 1));  /* the outermost gives way */
        r->n--;
    }
    linerec_frames(r)[r->n++] =
        (struct lineframe){ .fn = event_fn(L, ar), .ci = ci, .line = line, .left = 0 };
    return 0;
}

/*
 * Muted lines. A breakpoint over its rate drops hits, and on a hot line that
 * is most of them: the agent names such a line here (nffi_hook_mute) with the
 * functions of its one breakpoint and the time its bucket has a token again,
 * and until then a line event of that line in one of those functions is
 * counted here and goes no further: no Lua. The agent takes the counts
 * (nffi_hook_mute_take) into the breakpoint's hits and drops. Only lines with
 * one unconditional breakpoint and no --count are muted: a condition decides
 * whether an execution is a hit at all, and a count must see every hit.
 */
#define NFFI_HOOK_MAXMUTE 16
#define NFFI_HOOK_MUTEFNS 8
struct mute {
    int line;
    int nfns;
    double until;               /* CLOCK_REALTIME seconds, as ngx.now() */
    uint64_t dropped;
    uintptr_t bc[NFFI_HOOK_MUTEFNS];
};
static struct mute mutes[NFFI_HOOK_MAXMUTE];
static int nmutes;
static uint64_t muted;

static struct mute *mute_of(int line)
{
    for (int i = 0; i < nmutes; i++)
        if (mutes[i].line == line)
            return &mutes[i];
    return NULL;
}

/* 1 when this line event is a hit its breakpoint would drop: counted. */
static int mute_drop(lua_State *L, lua_Debug *ar, int line)
{
    struct mute *m = mute_of(line);
    if (m == NULL || m->nfns == 0)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if ((double)ts.tv_sec + ts.tv_nsec * 1e-9 >= m->until)
        return 0;
    /* a line event's function is a Lua function: its pc field names it */
    const char *fn = event_fn(L, ar);
    uintptr_t bc = fn != NULL ? read_ptr(fn + pc_offset, pc_size) : 0;
    int ours = 0;
    for (int i = 0; i < m->nfns && !ours; i++)
        ours = m->bc[i] == bc;
    if (ours) {
        m->dropped++;
        muted++;
    }
    return ours;
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

/* A coroutine newly counted inside; past the table's size lines stay on. */
static void add_inside(const void *co, int depth)
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
    add_inside(L, 1);
    lua_pushthread(L);
    anchor_top_thread(L);
    lua_settop(L, -2);
    apply_mask(L);
}

/* Named frames on a suspended coroutine's stack. Its stack takes one value and
 * gives it back per frame: what the agent's own walk (debug.getinfo) does. */
static int suspended_depth(lua_State *co)
{
    lua_Debug far;
    int depth = 0;
    if (lua_status(co) != LUA_YIELD)
        return 0;
    for (int level = 0; level < NFFI_HOOK_MAXWALK && lua_getstack(co, level, &far); level++)
        depth += frame_is_target(co, &far);
    return depth;
}

/* The thread at the top of L's stack is about to be resumed by L: when it is
 * suspended inside a named function, it counts as inside before it runs. */
static void resuming_top_thread(lua_State *L)
{
    lua_State *co = lua_tothread(L, -1);
    if (co == NULL || co == (lua_State *)L || find_inside(co) != NULL)
        return;
    resumes_seen++;
    int depth = suspended_depth(co);
    if (depth == 0)
        return;
    add_inside(co, depth);
    anchor_top_thread(L);
    apply_mask(L);
}

/* Whether the C function at the top of L's stack (object fn) is a wrap closure. */
static int is_wrap(lua_State *L, const void *fn)
{
    lua_CFunction cf = lua_tocfunction(L, -1);
    if (cf != NULL) {
        for (int i = 0; i < nwrap_cfs; i++)
            if (wrap_cfs[i] == cf)
                return 1;
        return 0;
    }
    if (nwrap_pcs == 0 || fn == NULL)
        return 0;
    uintptr_t pc = read_ptr((const char *)fn + pc_offset, pc_size);
    for (int i = 0; i < nwrap_pcs; i++)
        if (wrap_pcs[i] == pc)
            return 1;
    return 0;
}

/*
 * The call hook runs on every call while armed, so the common case (neither a
 * named function nor a resume) must not go through lua_getinfo. On GC64
 * LuaJIT (two-slot frames) the called function sits two slots below L->base,
 * and L->base is the lua_State field after the header, glref and gclist, with
 * L->top after it (both checked against lua_gettop before base is read).
 * That reading is compared with lua_getinfo's answer on the first FAST_CHECKS
 * calls and used only if it always agreed.
 */
#define FAST_BASE_OFFSET 32
#define FAST_CHECKS 64
static int fast_state;          /* 0: still checking, 1: trusted, -1: not this layout */
static int fast_checked;

static const char *frame_fn(lua_State *L)
{
    const char *base = (const char *)read_ptr((const char *)L + FAST_BASE_OFFSET, 8);
    uint64_t tv;
    memcpy(&tv, base - 16, 8);
    return (const char *)(uintptr_t)(tv & (((uint64_t)1 << 47) - 1));
}

/* top: lua_gettop(L) before lua_getinfo pushed fn. The base and top fields
 * are checked against it before base is ever dereferenced. */
static void fast_check(lua_State *L, int top, const void *fn)
{
    uintptr_t base = read_ptr((const char *)L + FAST_BASE_OFFSET, 8);
    uintptr_t stack_top = read_ptr((const char *)L + FAST_BASE_OFFSET + 8, 8);
    if (pc_size != 8 || fn == NULL || base == 0 || (base & 7) != 0 ||
        ((intptr_t)stack_top - (intptr_t)base) / 8 != (intptr_t)top + 1) {
        fast_state = -1;
        return;
    }
    if (frame_fn(L) != fn)
        fast_state = -1;
    else if (++fast_checked >= FAST_CHECKS)
        fast_state = 1;
}

static void rebuild_pc_bloom(void)
{
    pc_bloom = 0;
    for (int i = 0; i < ntargets; i++)
        pc_bloom |= BLOOM_BIT(targets[i]);
    for (int i = 0; i < nwrap_pcs; i++)
        pc_bloom |= BLOOM_BIT(wrap_pcs[i]);
}

/* Whether fn (pc: its pc field) may resume a coroutine: worth the slow path. */
static inline int maybe_resumer(const char *fn, uintptr_t pc)
{
    if ((fn_bloom & BLOOM_BIT(fn)) || (pc_bloom & BLOOM_BIT(pc)))
        return 1;
    if (pc != cfunc_pc || pc == 0)
        return 0;
    /* a C closure: its function pointer follows its pc field */
    uintptr_t cf = read_ptr(fn + pc_offset + pc_size, pc_size);
    for (int i = 0; i < nwrap_cfs; i++)
        if ((uintptr_t)wrap_cfs[i] == cf)
            return 1;
    return 0;
}

/* A call event: a named function entered, or a coroutine resumed. */
static void on_call(lua_State *L, lua_Debug *ar)
{
    if (fast_state == 1) {
        const char *fn = frame_fn(L);
        uintptr_t pc = read_ptr(fn + pc_offset, 8);
        if ((pc_bloom & BLOOM_BIT(pc)) && is_target(pc)) {
            enter(L);
            return;
        }
        if (!maybe_resumer(fn, pc))
            return;
    }
    int top = lua_gettop(L);
    if (!lua_getinfo(L, "f", ar))
        return;
    if (fast_state == 0)
        fast_check(L, top, lua_topointer(L, -1));
    if (!lua_iscfunction(L, -1)) {
        int hit = top_is_target(L);
        lua_settop(L, top);
        if (hit)
            enter(L);
        return;
    }
    const void *fn = lua_topointer(L, -1);
    for (int i = 0; i < nresume_fns; i++) {
        if (resume_fns[i] == fn) {
            /* its frame's first slot: the coroutine argument */
            lua_pushvalue(L, 1);
            resuming_top_thread(L);
            lua_settop(L, top);
            return;
        }
    }
    if (is_wrap(L, fn) && lua_getupvalue(L, -1, 1) != NULL)
        resuming_top_thread(L);
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

static void hook(lua_State *L, lua_Debug *ar)
{
    int line = ar->currentline;
    calls++;
    if (cur_mask == MASK_INSIDE && gated && ninside == 0 && !overflow && !forced &&
        ++idle_events > NFFI_HOOK_IDLE_EVENTS)
        apply_mask(L);
    if (ar->event == LUA_HOOKCALL) {
        /* also with calls only: a call into a recorded frame's slot ends it */
        linerec_callret(L, ar);
        if (gated)
            on_call(L, ar);
        return;
    }
    if (ar->event == LUA_HOOKRET) {
        linerec_callret(L, ar);
        if (gated && ninside > 0 && frame_is_target(L, ar))
            leave(L);
        return;
    }
    if (ar->event != LUA_HOOKLINE)
        return;
    if (check.active && line == check.line && (const void *)L == check.L)
        check.lines++;
    int is_bp_line = (unsigned)line < NFFI_HOOK_MAXLINE &&
                     (lines[(unsigned)line >> 3] & (1u << (line & 7)));
    if (linerec_line(L, ar, line, is_bp_line)) {
        repeats++;
        return;
    }
    if (!is_bp_line || (nmutes > 0 && mute_drop(L, ar, line)))
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
           lua_pushboolean != NULL && lua_rawset != NULL && lua_gettop != NULL &&
           lua_pushvalue != NULL && lua_tothread != NULL && lua_tocfunction != NULL &&
           lua_getupvalue != NULL && lua_getstack != NULL && lua_getlocal != NULL &&
           lua_status != NULL;
}

/* Line events everywhere; with gate, calls only until a named function runs. */
NFFI_EXPORT int nffi_hook_install(void *L, int gate)
{
    if (L == NULL || !nffi_hook_available() || (gate && proto_bc_delta == 0))
        return NFFI_EINVAL;
    watch_reset();
    gated = gate;
    /* repeat records are kept: a coroutine suspended on a breakpoint line
     * across this install is resumed there with no new execution. Call and
     * return events also ungated: they tell repeated line events apart (a C
     * function that yields shows nothing else) */
    cur_mask = gate ? gated_mask() : (LUA_MASKLINE | LUA_MASKRET | LUA_MASKCALL);
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
    watch_reset();
    uintptr_t bc = is_proto ? (uintptr_t)obj + proto_bc_delta
                            : read_ptr((const char *)obj + pc_offset, pc_size);
    if (!is_target(bc))
        targets[ntargets++] = bc;
    pc_bloom |= BLOOM_BIT(bc);
    return NFFI_OK;
}

static void learn_wrap(lua_State *co)
{
    lua_CFunction cf = lua_tocfunction(co, -1);
    const void *fn = lua_topointer(co, -1);
    if (cf != NULL && nwrap_cfs < NFFI_HOOK_MAXRESUMERS) {
        wrap_cfs[nwrap_cfs++] = cf;
        if (fn != NULL && pc_offset != 0)
            cfunc_pc = read_ptr((const char *)fn + pc_offset, pc_size);
    } else if (cf == NULL && fn != NULL && pc_offset != 0 && nwrap_pcs < NFFI_HOOK_MAXRESUMERS)
        wrap_pcs[nwrap_pcs++] = read_ptr((const char *)fn + pc_offset, pc_size);
}

/*
 * co: a coroutine of the agent's, suspended (not running) in a Lua function
 * whose locals are the resume functions: named resume_* (they resume their
 * first argument) or wrapped_* (a coroutine.wrap closure: every closure with
 * its C function resumes its first upvalue). Returns how many were learned.
 */
NFFI_EXPORT int nffi_hook_learn_resumers(void *co_)
{
    lua_State *co = co_;
    lua_Debug far;
    if (co == NULL || !nffi_hook_available() || lua_status(co) != LUA_YIELD)
        return 0;
    nresume_fns = nwrap_cfs = nwrap_pcs = 0;
    cfunc_pc = 0;
    fn_bloom = 0;
    for (int level = 0; level < 4 && lua_getstack(co, level, &far); level++) {
        if (!lua_getinfo(co, "S", &far) || strcmp(far.what, "Lua") != 0)
            continue;
        const char *name;
        for (int n = 1; (name = lua_getlocal(co, &far, n)) != NULL; n++) {
            if (lua_iscfunction(co, -1)) {
                if (strncmp(name, "resume_", 7) == 0 && nresume_fns < NFFI_HOOK_MAXRESUMERS)
                    resume_fns[nresume_fns++] = lua_topointer(co, -1);
                else if (strncmp(name, "wrapped_", 8) == 0)
                    learn_wrap(co);
            }
            lua_settop(co, -2);
        }
        break;
    }
    for (int i = 0; i < nresume_fns; i++)
        fn_bloom |= BLOOM_BIT(resume_fns[i]);
    rebuild_pc_bloom();
    return nresume_fns + nwrap_cfs + nwrap_pcs;
}

/* Resumes of coroutines the call hook looked into (not counted inside before). */
NFFI_EXPORT uint64_t nffi_hook_resumes(void)
{
    return resumes_seen;
}

NFFI_EXPORT void nffi_hook_targets_clear(void)
{
    watch_reset();
    ntargets = 0;
    rebuild_pc_bloom();
}

/* Coroutines the hook counts as inside a named function (-1: lost count or forced). */
NFFI_EXPORT int nffi_hook_inside(void)
{
    return (overflow || forced) ? -1 : ninside;
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

/* SIGTRAP (src/watch.c): a call read a named function's first instruction.
 * The call hook goes back on, and that call's dispatch is the first to go
 * through it. Signal context: plain stores and lua_sethook only, which is
 * what LuaJIT's own profiler does from its signal handler. */
static void on_watch_trap(int late)
{
    if (!watching)
        return;
    watching = 0;
    if (!check.active)
        watch_entries++;
    /* delivered after the call went on unhooked: a coroutine may be inside
     * uncounted, so lines everywhere until the agent's next full walk */
    if (late)
        forced = 1;
    if (lua_gethook(watch_L) != NULL)
        return;                 /* another hook took over: the agent puts ours back */
    cur_mask = gated_mask();
    lua_sethook(watch_L, hook, cur_mask, 0);
}

/* Watchpoints off, the call hook (or more) back on. L: any live state. */
static void unwatch(lua_State *L)
{
    if (!watching)
        return;
    nffi__watch_disable();
    watching = 0;
    if (L != NULL && lua_gethook(L) == NULL) {
        cur_mask = gated_mask();
        lua_sethook(L, hook, cur_mask, 0);
    }
}

/* From the agent, outside the hook: the mask follows the counts, if this
 * gated hook is still the VM's. L: any live state. */
static void reapply(void *L)
{
    if (L == NULL || !gated || lua_gethook == NULL)
        return;
    if (watching) {
        if (gated_mask() != MASK_OUTSIDE)
            unwatch((lua_State *)L);
        return;
    }
    if (lua_gethook((lua_State *)L) == hook)
        apply_mask((lua_State *)L);
}

/*
 * The heap walk behind watching: every object of the VM is on one list
 * (global_State.gc.root), threads included, whoever references them. Layout
 * of GC64 LuaJIT 2.1 (since mid-2020): lua_State.glref at 16;
 * global_State.gc.threshold at 24, gc.currentwhite at 32, gc.root at 40 and
 * gc.estimate at 96; every object starts with nextgc, marked, gct. Checked
 * before it is trusted: the threshold of the stopped GC reads 2^47, every
 * pointer is a plausible object address before it is followed, every gct a
 * heap object's, and the helper coroutine the agent made just before the walk
 * is met near the head of the list (new objects go first).
 * The walk goes in slices, the agent yielding between them with the GC
 * stopped (collectgarbage "stop"), so no object is freed under the cursor:
 * objects made meanwhile go to the head, behind it. Any GC work between
 * slices (an explicit collectgarbage call sets the threshold; a sweep that
 * frees anything lowers the estimate) ends the walk as failed, before the
 * cursor is touched again.
 * Meanwhile the call hook is on: a coroutine that enters or is resumed into a
 * named function during the walk is counted by it.
 */
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
static char watch_reason[160];
static long heap_objects;
static long heap_walk_us;
static long heap_slices;
static long heap_slice_max_us;

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
    snprintf(watch_reason, sizeof(watch_reason), "%s (%ld objects, %ld us in %ld slices)",
             why, walk.n, heap_walk_us, heap_slices);
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
        if (co == NULL || find_inside(co) != NULL)
            continue;
        add_inside(co, walk.depths[i]);
        lua_pushvalue(helper, walk.top + 1 + i);
        anchor_top_thread(helper);
        lua_settop(helper, -2);
    }
    lua_settop(helper, walk.top);
    walk.active = 0;
}

/* One slice of the walk. 0: more to do, 1: done, -1: failed. */
static int walk_slice(int budget_us)
{
    const char *g = walk.g;
    if (read_ptr(g + HEAP_G_THRESHOLD, 8) != walk.threshold ||
        read_ptr(g + HEAP_G_ESTIMATE, 8) != walk.estimate)
        return walk_fail("the GC ran during the heap walk");
    if (lua_status(walk.helper) != LUA_YIELD)
        return walk_fail("the walk's helper coroutine is gone");
    heap_slices++;
    int64_t t0 = cpu_us();
    const char *o = walk.cursor;
    int rc = 1;
    for (; o != NULL; o = (const char *)read_ptr(o, 8), walk.n++) {
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
        int depth = suspended_depth(co);
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
    heap_walk_us += spent;
    if (spent > heap_slice_max_us)
        heap_slice_max_us = spent;
    heap_objects = walk.n;
    if (rc == 0)
        return 0;
    if (!walk.met_helper)
        return walk_fail("heap layout not recognised");
    walk_finish();
    return 1;
}

/* Sets watchpoints on the named functions and starts the heap walk. helper:
 * a coroutine of the agent's, suspended, made just before, kept until the
 * walk ends; the GC stopped by the agent until then. 0, or -1
 * (nffi_hook_watch_reason says why). */
NFFI_EXPORT int nffi_hook_watch_begin(void *helper_)
{
    lua_State *helper = helper_;
    watch_ok = 0;
    walk.active = 0;            /* an earlier walk's helper may be gone: left as is */
    heap_objects = heap_walk_us = heap_slices = heap_slice_max_us = 0;
    if (helper == NULL || !gated || ntargets == 0 || !nffi_hook_available()) {
        snprintf(watch_reason, sizeof(watch_reason), "no gated hook with named functions");
        return -1;
    }
    if (!verified) {
        snprintf(watch_reason, sizeof(watch_reason), "watchpoints not verified in this worker");
        return -1;
    }
    if (ntargets > NFFI_WATCH_MAX) {
        snprintf(watch_reason, sizeof(watch_reason),
                 "more than %d breakpointed functions (the CPU has %d debug registers)",
                 NFFI_WATCH_MAX, NFFI_WATCH_MAX);
        return -1;
    }
    if (pc_size != 8 || lua_xmove == NULL || lua_checkstack == NULL || lua_status(helper) != LUA_YIELD) {
        snprintf(watch_reason, sizeof(watch_reason), "heap layout not known for this LuaJIT");
        return -1;
    }
    nffi__watch_on_trap(on_watch_trap);
    int rc = nffi__watch_set(targets, ntargets);
    if (rc != 0) {
        snprintf(watch_reason, sizeof(watch_reason), "perf_event_open: %s", strerror(-rc));
        return -1;
    }
    walk.helper = helper;
    walk.g = (const char *)read_ptr((const char *)helper + HEAP_L_GLREF, 8);
    walk.threshold = read_ptr(walk.g + HEAP_G_THRESHOLD, 8);
    /* the agent stopped the GC (or the application had): a threshold at its
     * maximum is what tells this layout from older ones (before mid-2020
     * global_State began with the string table) before anything is followed */
    if (walk.threshold != HEAP_MAX_MEM || !heap_ptr_ok(read_ptr(walk.g + HEAP_G_ROOT, 8))) {
        nffi__watch_close();
        snprintf(watch_reason, sizeof(watch_reason), "heap layout not recognised (or the GC is running)");
        return -1;
    }
    walk.estimate = read_ptr(walk.g + HEAP_G_ESTIMATE, 8);
    walk.dead_white = (uint8_t)((walk.g[HEAP_G_WHITE] ^ 3) & 3);
    walk.cursor = (const char *)read_ptr(walk.g + HEAP_G_ROOT, 8);
    walk.top = lua_gettop(helper);
    walk.found = walk.met_helper = 0;
    walk.n = 0;
    walk.active = 1;
    snprintf(watch_reason, sizeof(watch_reason), "heap walk under way");
    return 0;
}

/* One slice of at most about budget_us. 0: call again (after a yield), 1:
 * done, watching may start (the coroutines found count inside), -1: failed. */
NFFI_EXPORT int nffi_hook_watch_step(void *helper, int budget_us)
{
    if (!walk.active || helper != walk.helper)
        return -1;
    int rc = walk_slice(budget_us);
    if (rc == 1) {
        reapply(helper);
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
    if (L == NULL || !gated || !watch_ok || lua_gethook == NULL)
        return 0;
    char why[sizeof(watch_reason)];
    if (watching) {
        if (nffi__watch_health(why, sizeof(why)) == 0)
            return 1;
        /* traps may have gone elsewhere since the last tick: a coroutine may
         * be inside unseen, so lines everywhere until the agent's full walk,
         * and the call hook until the agent checks again */
        unwatch(L);
        forced = 1;
        watch_ok = verified = 0;
        snprintf(watch_reason, sizeof(watch_reason), "%s", why);
        return 0;
    }
    if (lua_gethook(L) != hook || gated_mask() != MASK_OUTSIDE)
        return 0;
    if (nffi__watch_health(why, sizeof(why)) != 0) {
        watch_ok = verified = 0;
        nffi__watch_close();
        snprintf(watch_reason, sizeof(watch_reason), "%s", why);
        return 0;
    }
    watch_L = L;
    watching = 1;
    if (nffi__watch_enable() != 0) {
        watching = 0;
        watch_ok = 0;
        snprintf(watch_reason, sizeof(watch_reason), "watchpoints could not be enabled");
        return 0;
    }
    cur_mask = 0;
    lua_sethook(L, NULL, 0, 0);
    return 1;
}

NFFI_EXPORT int nffi_hook_watching(void)
{
    return watching;
}

/* Why watching is off ("" when it is possible). */
NFFI_EXPORT const char *nffi_hook_watch_reason(void)
{
    return watch_reason;
}

/* Calls that found the hook removed and put it back (watchpoint traps). */
NFFI_EXPORT uint64_t nffi_hook_watch_entries(void)
{
    return watch_entries;
}

NFFI_EXPORT long nffi_hook_heap_objects(void)
{
    return heap_objects;
}

NFFI_EXPORT long nffi_hook_heap_walk_us(void)
{
    return heap_walk_us;
}

NFFI_EXPORT long nffi_hook_heap_slices(void)
{
    return heap_slices;
}

/* The longest slice of the last heap walk, µs of the worker's CPU. */
NFFI_EXPORT long nffi_hook_heap_slice_max_us(void)
{
    return heap_slice_max_us;
}

/* Watching ends whatever named set it was prepared for; it must prove
 * itself again before it comes back. */
static void watch_reset(void)
{
    walk.active = 0;            /* the helper may be gone: its stack is left as is */
    unwatch(watch_L);
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
    if (L == NULL || fn == NULL || !nffi_hook_available() || pc_size != 8 || proto_bc_delta == 0) {
        snprintf(watch_reason, sizeof(watch_reason), "closure layout of this LuaJIT not known");
        return -1;
    }
    lua_Hook h = lua_gethook(L);
    if (watching || check.active || ntargets == NFFI_HOOK_MAXTARGETS || (h != NULL && h != hook)) {
        snprintf(watch_reason, sizeof(watch_reason), "%s", h != NULL && h != hook
                 ? "another debug hook is installed" : "watching or checking already");
        return -1;
    }
    watch_ok = verified = 0;
    walk.active = 0;
    uintptr_t bc = read_ptr((const char *)fn + pc_offset, pc_size);
    int rc = nffi__watch_set(&bc, 1);
    if (rc != 0) {
        snprintf(watch_reason, sizeof(watch_reason), "perf_event_open: %s", strerror(-rc));
        return -1;
    }
    char why[sizeof(watch_reason)];
    if (nffi__watch_health(why, sizeof(why)) != 0) {
        nffi__watch_close();
        snprintf(watch_reason, sizeof(watch_reason), "%s", why);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &check.t0);
    check.L = L;
    check.line = line;
    check.lines = 0;
    check.saved_gated = gated;
    check.saved_hook = h;
    check.saved_mask = h != NULL ? cur_mask : 0;
    check.traps0 = nffi_watch_traps();
    check.late0 = nffi_watch_late_traps();
    targets[ntargets++] = bc;
    rebuild_pc_bloom();
    gated = 1;
    nffi__watch_on_trap(on_watch_trap);
    watch_L = L;
    watching = 1;
    check.active = 1;
    if (nffi__watch_enable() != 0) {
        nffi_hook_watch_check_end(L);
        snprintf(watch_reason, sizeof(watch_reason), "watchpoints could not be enabled");
        return -1;
    }
    cur_mask = 0;
    lua_sethook(L, NULL, 0, 0);
    return 0;
}

NFFI_EXPORT int nffi_hook_watch_check_end(void *L_)
{
    lua_State *L = L_;
    if (!check.active || L == NULL)
        return 0;
    watching = 0;
    nffi__watch_close();
    ntargets--;                 /* the probe, named last; nothing named since */
    rebuild_pc_bloom();
    struct inside *e = find_inside(L);
    if (e != NULL)
        drop_inside(e);
    check.active = 0;
    gated = check.saved_gated;
    if (check.saved_hook == hook) {
        cur_mask = gated ? gated_mask() : check.saved_mask;
        lua_sethook(L, hook, cur_mask, 0);
    } else if (lua_gethook(L) == hook) {
        cur_mask = 0;
        lua_sethook(L, NULL, 0, 0);
    }
    uint64_t traps = nffi_watch_traps() - check.traps0;
    uint64_t late = nffi_watch_late_traps() - check.late0;
    watch_checks++;
    watch_check_us = us_since(&check.t0);
    if (traps == 0)
        snprintf(watch_reason, sizeof(watch_reason), "traps not delivered on this machine%s",
                 nffi__watch_faulty() ? " (test switch)" : "");
    else if (late != 0)
        snprintf(watch_reason, sizeof(watch_reason), "trap delivered late (after the call ran)");
    else if (check.lines != 1)
        snprintf(watch_reason, sizeof(watch_reason),
                 "trap delivered but the call hook missed the call (%d line events)", check.lines);
    else {
        watch_reason[0] = 0;
        verified = 1;
        return 1;
    }
    return 0;
}

NFFI_EXPORT uint64_t nffi_hook_watch_checks(void)
{
    return watch_checks;
}

NFFI_EXPORT long nffi_hook_watch_check_us(void)
{
    return watch_check_us;
}

/* Checked, set on the named functions and walked: the hook rests on
 * watchpoints whenever no coroutine is inside. */
NFFI_EXPORT int nffi_hook_watch_ok(void)
{
    return watch_ok && verified;
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
    /* lines stay on (and no watching) while some coroutine inside is not counted */
    overflow = resync_dropped;
    reapply(L);
    return ninside;
}

NFFI_EXPORT int nffi_hook_remove(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return NFFI_EINVAL;
    watch_reset();
    if (lua_gethook((lua_State *)L) == hook)
        lua_sethook((lua_State *)L, NULL, 0, 0);
    ninside = 0;
    overflow = 0;
    forced = 0;
    gated = 0;
    cur_mask = 0;
    nmutes = 0;
    linerec_clear();            /* from here no event is seen: none can be trusted */
    return NFFI_OK;
}

NFFI_EXPORT int nffi_hook_installed(void *L)
{
    if (L == NULL || !nffi_hook_available())
        return 0;
    lua_Hook h = lua_gethook((lua_State *)L);
    return h == hook || (watching && h == NULL);
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

/* Lines forced on until a full walk (after an arm, or a late watchpoint trap). */
NFFI_EXPORT int nffi_hook_forced(void)
{
    return forced;
}

/* The call hook's direct frame read: 1 trusted, 0 still checking, -1 not used. */
NFFI_EXPORT int nffi_hook_fast(void)
{
    return fast_state;
}

/* Mutes line until the time until (CLOCK_REALTIME seconds); its functions
 * follow with nffi_hook_mute_fn. A line muted already keeps its functions and
 * count. 0, or NFFI_EFULL / NFFI_EINVAL (then nothing is muted). */
NFFI_EXPORT int nffi_hook_mute(int line, double until)
{
    struct mute *m = mute_of(line);
    if (m == NULL) {
        if (nmutes == NFFI_HOOK_MAXMUTE || pc_size == 0)
            return pc_size == 0 ? NFFI_EINVAL : NFFI_EFULL;
        m = &mutes[nmutes++];
        *m = (struct mute){ .line = line };
    }
    m->until = until;
    return NFFI_OK;
}

/* One function of the muted line's breakpoint: a closure or a prototype. */
NFFI_EXPORT int nffi_hook_mute_fn(int line, const void *obj, int is_proto)
{
    struct mute *m = mute_of(line);
    if (m == NULL || obj == NULL || m->nfns == NFFI_HOOK_MUTEFNS)
        return NFFI_EINVAL;
    m->bc[m->nfns++] = is_proto ? (uintptr_t)obj + proto_bc_delta
                                : read_ptr((const char *)obj + pc_offset, pc_size);
    return NFFI_OK;
}

/* The hits dropped here on line since the last take. */
NFFI_EXPORT uint64_t nffi_hook_mute_take(int line)
{
    struct mute *m = mute_of(line);
    if (m == NULL)
        return 0;
    uint64_t n = m->dropped;
    m->dropped = 0;
    return n;
}

/* Forgets the line (take its count first). */
NFFI_EXPORT void nffi_hook_unmute(int line)
{
    struct mute *m = mute_of(line);
    if (m != NULL)
        *m = mutes[--nmutes];
}

/* Hits dropped in the hook, every line, since the library loaded. */
NFFI_EXPORT uint64_t nffi_hook_muted(void)
{
    return muted;
}

NFFI_EXPORT uint64_t nffi_hook_repeats(void)
{
    return repeats;
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
