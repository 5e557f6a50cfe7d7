/*
 * libnffi: the nonblocking FFI task queue for stock nginx + lua-nginx-module.
 *
 * Two kinds of callers, never mixed:
 *   - the nginx worker's event-loop thread (through LuaJIT FFI): nffi_runtime_*,
 *     nffi_task_*, nffi_wake_*, nffi_drain;
 *   - runtime threads (the loaded runtime library): ngx_http_lua_ffi_task_poll,
 *     ngx_http_lua_ffi_get_req, ngx_http_lua_ffi_respond and their
 *     ngx_http_lua_nonblocking_ffi_ aliases, exactly as lua-resty-ffi defines them.
 * Runtime threads never touch the Lua VM.
 *
 * Status convention: functions returning int give 0 on success and a negative
 * NFFI_E* code on failure (errno values are returned negated by nffi_wake_*).
 *
 * This header is read as-is by ffi.cdef (lua/nffi/cdefs.lua holds the same
 * declarations): no macros, no includes in the declarations below.
 */
#ifndef NFFI_H
#define NFFI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---- */
enum {
    NFFI_OK = 0,
    NFFI_EFULL = -1,      /* the runtime's queue holds max_queue tasks */
    NFFI_EFINISHED = -2,  /* the runtime was unloaded (finish called) */
    NFFI_ENOMEM = -3,
    NFFI_EINVAL = -4
};

/* ---- task states, as seen by snapshots ---- */
enum {
    NFFI_TASK_PENDING = 0,   /* in the queue, not yet polled */
    NFFI_TASK_POLLED = 1,    /* a runtime thread holds it */
    NFFI_TASK_DONE = 2,      /* responded, on the done list */
    NFFI_TASK_READY = 3,     /* drained by the pump, waiter not resumed yet */
    NFFI_TASK_ABANDONED = 4  /* waiter timed out; freed once the runtime responds */
};

/* ---- latency kinds (histogram index) ---- */
enum {
    NFFI_LAT_QUEUE = 0,    /* polled - enqueued */
    NFFI_LAT_SERVICE = 1,  /* responded - polled */
    NFFI_LAT_WAKEUP = 2,   /* resumed - responded */
    NFFI_LAT_TOTAL = 3     /* resumed - enqueued */
};

typedef struct nffi_runtime nffi_runtime;
typedef struct nffi_task nffi_task;

typedef struct nffi_stats {
    uint64_t enqueued;     /* accepted by submit */
    uint64_t polled;       /* handed to a runtime thread */
    uint64_t responded;    /* respond() called */
    uint64_t resumed;      /* result taken by the waiting coroutine */
    uint64_t timeouts;     /* abandoned by a timed-out waiter */
    uint64_t rejected;     /* refused: queue full or finished */
    uint64_t late;         /* responses that arrived after their waiter gave up */
    int64_t depth;         /* pending in the queue now */
    int64_t in_flight;     /* polled, not yet responded */
    int64_t live;          /* tasks allocated and not yet released */
    uint64_t lat_count[4]; /* samples per latency kind */
    uint64_t lat_sum_ns[4];
    uint64_t lat_max_ns[4];
} nffi_stats;

typedef struct nffi_task_info {
    uint64_t id;
    const nffi_runtime *runtime;
    int64_t t_enqueued;    /* CLOCK_MONOTONIC ns; 0 = not reached yet */
    int64_t t_polled;
    int64_t t_responded;
    int64_t t_resumed;
    uint64_t req_len;
    int32_t state;         /* NFFI_TASK_* */
    int32_t rc;            /* valid once responded */
    uint32_t waiter;       /* the tag passed to nffi_task_submit */
    uint32_t preview_len;  /* bytes valid in preview */
    char method[32];       /* NUL-terminated, truncated */
    char preview[64];      /* first bytes of the request */
} nffi_task_info;

/* ---- library ---- */
const char *nffi_version(void);
int nffi_instrumented(void);            /* 0 when built with NFFI_NO_INSTRUMENT */
int64_t nffi_now_ns(void);              /* CLOCK_MONOTONIC, the clock of every timestamp */
/* CPU time of the calling thread: what the agent's slices cost the event loop,
 * without the time the thread was preempted. */
int64_t nffi_thread_cpu_ns(void);

/* ---- runtimes (worker thread) ---- */
/* name is copied; max_queue <= 0 means 65536. The returned pointer is the `tq`
 * handed to the runtime library's init function. Never freed: runtime threads
 * may still hold it after unload. */
nffi_runtime *nffi_runtime_new(const char *name, int max_queue);
/* After the pending tasks, every poll returns NULL (the "NULL task"). Idempotent. */
int nffi_runtime_finish(nffi_runtime *rt);
int nffi_runtime_finished(const nffi_runtime *rt);
void nffi_runtime_stats(const nffi_runtime *rt, nffi_stats *out);
/* q in [0,1]; nanoseconds, from the histogram (bucket upper bound, <= max); 0 when empty. */
double nffi_runtime_quantile(const nffi_runtime *rt, int lat_kind, double q);
/* Copies up to max live tasks with id > after_id, in id order. Returns the count.
 * Call repeatedly with the last id to page through without blocking anyone. */
int nffi_runtime_tasks(const nffi_runtime *rt, uint64_t after_id, nffi_task_info *out, int max);
/* Copies up to max live tasks of every runtime with id > after_id, in id order,
 * which is the order they were submitted in (ids and t_enqueued both grow with
 * each submit). Paging with the last id returned costs O(max) per call, however
 * long the list: the walk remembers where it stopped (a few hints, kept on live
 * tasks). An after_id far from every hint walks from the nearer end. */
int nffi_tasks(uint64_t after_id, nffi_task_info *out, int max);
/* Counts the live tasks (every runtime) with id > after_id that were enqueued at
 * or before enq_before_ns (0: at any time; uninstrumented tasks never match a
 * time), visiting at most max_visit tasks. *next_after gets the id to pass as
 * after_id to go on, or 0 once the count is complete: at the end of the list,
 * or at a task enqueued after enq_before_ns (every later one was too). With
 * after_id and enq_before_ns both 0 the answer is kept, not walked. */
int64_t nffi_tasks_count(uint64_t after_id, int64_t enq_before_ns, int max_visit,
                         uint64_t *next_after);
/* Runtime-thread side spinning before sleeping in poll, microseconds (0 = none).
 * A poller pinned to a single CPU never spins. */
void nffi_runtime_set_poll_spin(nffi_runtime *rt, int spin_us);

/* ---- tasks (worker thread) ---- */
/* Copies req (NUL-terminated copy, NULs inside allowed). Returns NULL with *status
 * set to NFFI_EFULL / NFFI_EFINISHED / NFFI_ENOMEM / NFFI_EINVAL. */
nffi_task *nffi_task_submit(nffi_runtime *rt, const char *method, size_t method_len,
                            const char *req, size_t req_len, uint32_t waiter, int *status);
uint64_t nffi_task_id(const nffi_task *t);
int nffi_task_state(const nffi_task *t);
/* Busy-waits up to max_ns for the response without going through the done list.
 * Returns 1 when the task is READY (take the result now), 0 otherwise (wait for
 * the pump as usual). Returns 0 at once when the caller is pinned to one CPU. */
int nffi_task_spin(nffi_task *t, int64_t max_ns);
/* For a READY task: stamps `resumed`, records latencies, hands out the response
 * (*rsp is NULL when the runtime sent none) and its length; returns rc. */
int nffi_task_result(nffi_task *t, char **rsp, size_t *rsp_len);
/* Frees the task and its response. NULL-safe. */
void nffi_task_release(nffi_task *t);
/* The waiter gave up. PENDING: removed from the queue and freed. POLLED/DONE:
 * freed when drained, its response never delivered. READY: freed now.
 * Returns 1 when freed now, 0 when deferred. The pointer is dead either way. */
int nffi_task_abandon(nffi_task *t);
/* Copies one task's snapshot (stamps, rc, preview) as nffi_runtime_tasks does;
 * the task binding reads its latencies with it before release. 0 or NFFI_EINVAL. */
int nffi_task_get_info(const nffi_task *t, nffi_task_info *out);

/* ---- wake-up path (worker thread) ---- */
/* Creates a private directory (0700) and a listening unix socket in it; writes the
 * path into path_out (size path_max). Returns the listening fd or -errno. */
int nffi_wake_listen(char *path_out, int path_max);
/* After the worker's cosocket connected to that path: accepts the connection,
 * checks the peer is this process, removes socket file and directory, closes the
 * listening fd and keeps the accepted end as the write side. 0 or -errno. */
int nffi_wake_accept(int listen_fd, const char *path);
/* Writes one wake byte if none is pending (used at worker exit to unblock the pump). */
void nffi_wake_kick(void);
/* Takes up to max done tasks (all runtimes), in completion order, clearing the
 * pending-wake flag first. Abandoned tasks are freed here and not returned. */
int nffi_drain(nffi_task **out, int max);

/* ---- inspector agent helpers (worker thread) ---- */
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

/* ---- the request of a coroutine (worker thread, inspector agent) ---- */
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

/* ---- breakpoint line hook (worker thread, inspector agent) ---- */
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

/* ---- runtime-thread ABI (lua-resty-ffi compatible) ---- */
void *ngx_http_lua_ffi_task_poll(void *tq);
char *ngx_http_lua_ffi_get_req(void *task, int *len);
void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len);
void *ngx_http_lua_nonblocking_ffi_task_poll(void *tq);
char *ngx_http_lua_nonblocking_ffi_get_req(void *task, int *len);
void ngx_http_lua_nonblocking_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

#ifdef __cplusplus
}
#endif
#endif
