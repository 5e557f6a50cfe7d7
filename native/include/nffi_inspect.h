/*
 * libnffi's part for the inspector agent (lua/nffi/inspect/): the breakpoint
 * line hook and its hardware watchpoints, the request of a coroutine, and the
 * checks of the files the agent reads. Called on the nginx worker's
 * event-loop thread only, through LuaJIT FFI; never from runtime threads.
 * Statuses as in nffi.h: 0 or a negative NFFI_E* code unless said otherwise.
 *
 * This header is read as-is by ffi.cdef (lua/nffi/cdefs.lua holds the same
 * declarations): no macros, no includes in the declarations below.
 */
#ifndef NFFI_INSPECT_H
#define NFFI_INSPECT_H

#include "nffi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- files the agent reads (src/inspect.c) ---- */
/* nffi_path_check results: >= 0 accepted (what it is), < 0 refused (why). */
enum {
    NFFI_PATH_FILE = 0,      /* a regular file owned by uid, no group/other bits */
    NFFI_PATH_DIR = 1,       /* a directory owned by uid, no group/other bits */
    NFFI_PATH_MISSING = -1,  /* lstat failed */
    NFFI_PATH_SYMLINK = -2,
    NFFI_PATH_TYPE = -3,     /* neither a regular file nor a directory */
    NFFI_PATH_OWNER = -4,    /* not owned by uid */
    NFFI_PATH_MODE = -5      /* some group/other permission bit set */
};
unsigned nffi_euid(void);
/* lstat()s path (never follows a symlink) and checks owner, type and mode. *sig
 * (when not NULL) gets a hash of dev, inode, mode, owner and ctime, which changes
 * whenever the path is replaced, chmod'ed or chown'ed; 0 when lstat fails. */
int nffi_path_check(const char *path, unsigned uid, uint64_t *sig);

/* ---- the request of a coroutine (src/request.c) ---- */
/* lua-nginx-module keeps a coroutine's request in its exdata, but many
 * coroutines carry a dangling one (see src/request.c). co is a lua_State.
 * nffi_co_exdata reads only the lua_State: safe on any live coroutine, for
 * comparing. nffi_co_request dereferences the request: only for a coroutine
 * whose request is alive (anchored by lua-nginx-module and started). method
 * and uri point into the request: copy them before the event loop runs. */
enum {
    NFFI_REQ_NONE = 1        /* no client request: none set, or a timer's fake one */
};
int nffi_request_available(void);        /* 1 when the host's exdata and request functions resolved */
const void *nffi_co_exdata(const void *co);
int nffi_co_request(const void *co, const char **method, size_t *method_len,
                    const char **uri, size_t *uri_len);

/* ---- breakpoint line hook (src/hook*.c) ---- */
/* A C line hook installed with lua_sethook: a line not set in its bitmap
 * returns at once; a set line calls registry["nffi.inspect.bp_hook"](nil, line)
 * under lua_pcall. L is any lua_State of the VM (hooks are per VM), never NULL.
 * Gated (install with gate = 1, after nffi_hook_calibrate): call events only
 * until a coroutine enters a function named with nffi_hook_target, then line
 * and return events until no coroutine is inside (see src/hook.c, Gating).
 * lua_* are resolved from the host process; nffi_hook_available() is 0 when
 * they are not (use a Lua hook then). */
int nffi_hook_available(void);
int nffi_hook_install(void *L, int gate); /* NFFI_EINVAL when L is NULL or unavailable, or gate uncalibrated */
int nffi_hook_calibrate(const void *fn, const void *proto); /* 1: closure layout known, gating possible */
int nffi_hook_target(const void *obj, int is_proto); /* names a breakpointed function; NFFI_EFULL past 256 */
void nffi_hook_targets_clear(void);
int nffi_hook_learn_resumers(void *co);   /* co suspended with resume_* / wrapped_* locals; how many learned */
int nffi_hook_inside(void);              /* coroutines inside a named function, -1 when lost or forced */
void nffi_hook_resync_begin(void);
void nffi_hook_resync_set(const void *co, int depth);
int nffi_hook_resync_end(void *L, int full);
void nffi_hook_force_lines(void *L);
int nffi_hook_remove(void *L);           /* only when the current hook is this one */
int nffi_hook_installed(void *L);        /* 1 when the VM's current hook is this one */
int nffi_hook_set_line(int line, int on); /* NFFI_EINVAL outside [0, 2^20) */
void nffi_hook_clear_lines(void);
int nffi_hook_fast(void);                 /* call hook reads frames directly: 1 yes, 0 checking, -1 no */
int nffi_hook_mask(void *L);             /* the VM's hook event mask, -1 when unknown */
/* Watching (src/hook_watch.c, src/heapwalk.c, src/watch.c): with no coroutine
 * inside a named function, no hook at all and hardware watchpoints on the
 * named functions' first instruction. begin/step walk the Lua heap in slices
 * (the caller stops the GC around the walk and yields between steps); tick
 * switches to watching when nothing is inside. */
int nffi_hook_watch_begin(void *helper);  /* helper: the agent's suspended coroutine; 0 or -1 */
int nffi_hook_watch_step(void *helper, int budget_us); /* 0 more, 1 done, -1 failed */
int nffi_hook_watch_tick(void *L);        /* 1 when watching */
int nffi_hook_watching(void);
int nffi_hook_forced(void);               /* lines on until a full resync */
const char *nffi_hook_watch_reason(void); /* why not watching; "" when it can */
uint64_t nffi_watch_traps(void);
uint64_t nffi_watch_late_traps(void);     /* delivered after the access (SIGTRAP blocked) */
int nffi_watch_error(void);               /* the last -errno of perf_event_open or enable */
/* Watching proves itself before the hook relies on it (src/hook_watch.c): a
 * watchpoint on fn's first instruction, no hook, then the caller calls fn
 * (interpreted, from Lua) and end says whether the trap put the call hook back
 * in time for fn's first line event (line) to reach the hook. */
int nffi_hook_watch_check_begin(void *L, const void *fn, int line); /* 0, or -1 (reason) */
int nffi_hook_watch_check_end(void *L);   /* 1 the chain works here, 0 not (reason) */
int nffi_hook_watch_ok(void);             /* checked, set and walked: the hook rests on watchpoints */
void nffi_watch_fault(int on);            /* test switch: events open, never enabled */
int nffi_watch_probe(void);               /* C alone: 1 delivered, 0 no trap, -errno refused */
int nffi_watch_emulate_trap(void);        /* test switch: a trap now, as if delivered */
/* Hits past a breakpoint's rate dropped in the hook (src/hook_mute.c) */
int nffi_hook_mute(int line, double until);
int nffi_hook_mute_fn(int line, const void *obj, int is_proto);
uint64_t nffi_hook_mute_take(int line);
void nffi_hook_unmute(int line);
/* The hook's counters and state in one call (Agent.getStats); the counters
 * are read only here, since the library loaded. The state fields are what
 * their getters above return: watch_reason, mask, inside, fast, watching,
 * watch_ok; watch_traps and watch_late those of nffi_watch_traps and
 * nffi_watch_late_traps. L: any lua_State of the VM, for mask; with NULL,
 * mask is -1. watch_reason points into the library and changes with the next
 * hook call: copy it. 0, or NFFI_EINVAL (out NULL). */
typedef struct nffi_hook_stats {
    uint64_t calls;             /* every hook call, lines and others */
    uint64_t matches;           /* line events that passed the bitmap */
    uint64_t errors;            /* callback errors dropped */
    uint64_t resumes;           /* resumes the call hook looked into */
    uint64_t repeats;           /* repeated line events dropped (see src/hook_repeat.c) */
    uint64_t muted;             /* hits dropped in the hook (nffi_hook_mute) */
    uint64_t watch_entries;     /* traps that put the hook back */
    uint64_t watch_traps;
    uint64_t watch_late;
    uint64_t watch_checks;      /* watching checks run */
    int64_t watch_check_us;     /* the last check, µs of wall time */
    int64_t heap_objects;       /* the last heap walk's */
    int64_t heap_walk_us;       /* the last walk's CPU, µs */
    int64_t heap_slices;
    int64_t heap_slice_max_us;  /* its longest slice, µs of the worker's CPU */
    const char *watch_reason;
    int32_t mask;
    int32_t inside;
    int32_t fast;
    int32_t watching;
    int32_t watch_ok;
} nffi_hook_stats;
int nffi_hook_get_stats(void *L, nffi_hook_stats *out);

#ifdef __cplusplus
}
#endif
#endif
