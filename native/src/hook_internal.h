/*
 * What the files of the breakpoint hook share. Not part of the contract.
 *
 *   hook.c         the hook and its call gating (who is inside a named function)
 *   hook_resume.c  coroutines resumed from Lua into a named function
 *   hook_layout.c  where LuaJIT keeps a closure's bytecode and a frame's function
 *   hook_repeat.c  repeated line events dropped
 *   hook_mute.c    hits over a breakpoint's rate dropped
 *   hook_watch.c   watching: watchpoints instead of the hook, and their self-check
 *   heapwalk.c     the walk of the Lua heap that makes watching sound
 *   hook_stats.c   the counters, read in one call
 *
 * Worker thread only, all of it: the agent writes this state between hook
 * calls on the thread the hook runs on, so there is no lock. The one other
 * context is the SIGTRAP handler (hook_watch.c), on that same thread.
 */
#ifndef NFFI_HOOK_INTERNAL_H
#define NFFI_HOOK_INTERNAL_H

#include <string.h>
#include <lua.h>
#include "nffi_internal.h"

/* lua_* come from the host process (nginx's lua module and its libluajit):
 * referenced weakly, so libnffi still loads, and its tests still link, without
 * them; nffi_hook_available() says whether they resolved. */
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

#define NFFI_HOOK_MAXTARGETS 256
#define NFFI_HOOK_MASK_OUTSIDE LUA_MASKCALL
#define NFFI_HOOK_MASK_INSIDE (LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE)

/* ---- the hook and its gate (hook.c) ---- */
NFFI_HIDDEN void nffi__hook(lua_State *L, lua_Debug *ar);
/* Bytecode addresses of the named functions: the watchpoints go on them. */
NFFI_HIDDEN extern uintptr_t nffi__targets[NFFI_HOOK_MAXTARGETS];
NFFI_HIDDEN extern int nffi__ntargets;
NFFI_HIDDEN extern int nffi__gated;      /* installed call-gated */
NFFI_HIDDEN extern int nffi__forced;     /* lines on until a full resync */
NFFI_HIDDEN extern int nffi__cur_mask;   /* the mask this hook was last set with */
NFFI_HIDDEN int nffi__gated_mask(void);
NFFI_HIDDEN void nffi__apply_mask(lua_State *L);
NFFI_HIDDEN void nffi__rebuild_pc_bloom(void);
NFFI_HIDDEN int nffi__is_inside(const void *co);
NFFI_HIDDEN void nffi__add_inside(const void *co, int depth);
NFFI_HIDDEN void nffi__forget_inside(const void *co);
NFFI_HIDDEN void nffi__anchor_top_thread(lua_State *L);
NFFI_HIDDEN int nffi__suspended_depth(lua_State *co);
NFFI_HIDDEN void nffi__reapply(void *L);

/* One bit per address in a 64-bit filter: the call hook's first test. */
#define NFFI_HOOK_BLOOM_BIT(p) ((uint64_t)1 << (((uintptr_t)(p) >> 3) & 63))

/* ---- resumes (hook_resume.c) ---- */
#define NFFI_HOOK_MAXRESUMERS 8
/* Functions that resume their first argument (coroutine.resume: lua-nginx-
 * module's and LuaJIT's), by object; and coroutine.wrap closures, which resume
 * their first upvalue: lua-nginx-module's by their C function, LuaJIT's (a
 * fast function, no C function to compare) by their pc field, which is the
 * same for every closure of one fast function. Learned by hook_resume.c, read
 * by the call hook's inline filter (hook.c) on every call. */
struct nffi__resumers {
    const void *fns[NFFI_HOOK_MAXRESUMERS];
    int nfns;
    lua_CFunction wrap_cfs[NFFI_HOOK_MAXRESUMERS];
    int nwrap_cfs;
    uintptr_t wrap_pcs[NFFI_HOOK_MAXRESUMERS];
    int nwrap_pcs;
    /* The pc field every C function (not fast function) shares: a wrap closure
     * of lua-nginx-module's is one of those, told apart by its C function. */
    uintptr_t cfunc_pc;
    uint64_t fn_bloom;          /* one bit per resume function object */
};
NFFI_HIDDEN extern struct nffi__resumers nffi__resumers;
/* A call event whose function, at the top of L's stack, is a C function: when
 * it resumes a coroutine suspended inside, that one counts as inside before it
 * runs. Leaves values on L's stack: the caller restores its top. */
NFFI_HIDDEN void nffi__resume_call(lua_State *L);

/* ---- LuaJIT's layout (hook_layout.c) ---- */
/* Calibration: where a Lua closure keeps its bytecode address, and how far a
 * prototype's bytecode starts from the prototype (0: not calibrated). */
NFFI_HIDDEN extern size_t nffi__pc_offset;
NFFI_HIDDEN extern size_t nffi__pc_size;
NFFI_HIDDEN extern uintptr_t nffi__proto_bc_delta;
/* The direct frame read (nffi__frame_fn): 0 still checking, 1 trusted, -1 not
 * this layout. */
NFFI_HIDDEN extern int nffi__fast_state;
NFFI_HIDDEN void nffi__fast_check(lua_State *L, int top, const void *fn);
NFFI_HIDDEN const void *nffi__event_fn(lua_State *L, lua_Debug *ar);
NFFI_HIDDEN uintptr_t nffi__bc_of(const void *obj, int is_proto);

static inline uintptr_t nffi__read_ptr(const void *at, size_t size)
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

/* The function of L's current frame, read from the frame: only once
 * nffi__fast_state is 1. Inline because the call hook, which runs on every
 * call, reads it first. On GC64 LuaJIT (two-slot frames) the called function
 * sits two slots below L->base, and L->base is the lua_State field after the
 * header, glref and gclist. */
#define NFFI_HOOK_FAST_BASE_OFFSET 32

static inline const char *nffi__frame_fn(lua_State *L)
{
    const char *base = (const char *)nffi__read_ptr((const char *)L + NFFI_HOOK_FAST_BASE_OFFSET, 8);
    uint64_t tv;
    memcpy(&tv, base - 16, 8);
    return (const char *)(uintptr_t)(tv & (((uint64_t)1 << 47) - 1));
}

/* ---- repeated line events (hook_repeat.c) ---- */
NFFI_HIDDEN void nffi__repeat_callret(lua_State *L, lua_Debug *ar);
NFFI_HIDDEN int nffi__repeat_line(lua_State *L, lua_Debug *ar, int line, int is_bp_line);
NFFI_HIDDEN void nffi__repeat_clear(void);

/* ---- muted lines (hook_mute.c) ---- */
NFFI_HIDDEN extern int nffi__nmutes;     /* read first by the hook: 0 almost always */
NFFI_HIDDEN int nffi__mute_drop(lua_State *L, lua_Debug *ar, int line);

/* ---- watching (hook_watch.c) ---- */
/* Nonzero while the hook is removed and watchpoints stand in for it. */
NFFI_HIDDEN extern volatile int nffi__watching;
/* Nonzero while the self-check runs: the hook hands it every line event, and
 * it counts those of its probe's first line. */
NFFI_HIDDEN extern int nffi__checking;
NFFI_HIDDEN void nffi__check_line(lua_State *L, int line);
NFFI_HIDDEN void nffi__unwatch(lua_State *L);
NFFI_HIDDEN void nffi__watch_reset(void);
/* Why watching is off: written where it is decided, read by the agent. */
NFFI_HIDDEN void nffi__hook_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the heap walk (heapwalk.c) ---- */
NFFI_HIDDEN int nffi__walk_begin(lua_State *helper);
NFFI_HIDDEN int nffi__walk_step(lua_State *helper, int budget_us);
NFFI_HIDDEN void nffi__walk_cancel(void);
NFFI_HIDDEN void nffi__walk_reset_stats(void);

/* ---- counters (hook_stats.c) ---- */
/* Written by the file that counts each, read by nffi_hook_get_stats. */
struct nffi__hook_counts {
    uint64_t calls;             /* hook.c: every hook call */
    uint64_t matches;           /* hook.c: line events that passed the bitmap */
    uint64_t errors;            /* hook.c: callback errors dropped */
    uint64_t resumes;           /* hook_resume.c: resumes the call hook looked into */
    uint64_t repeats;           /* hook.c: line events hook_repeat.c calls repeats */
    uint64_t muted;             /* hook_mute.c */
    uint64_t watch_entries;     /* hook_watch.c: traps that put the hook back */
    uint64_t watch_checks;      /* hook_watch.c */
    long watch_check_us;        /* hook_watch.c: the last check */
    long heap_objects;          /* heapwalk.c: the last walk's */
    long heap_walk_us;
    long heap_slices;
    long heap_slice_max_us;
};
NFFI_HIDDEN extern struct nffi__hook_counts nffi__hook_count;

#endif
