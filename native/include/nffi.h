/*
 * libnffi: the nonblocking FFI task queue for stock nginx + lua-nginx-module.
 *
 * Two kinds of callers, never mixed:
 *   - the nginx worker's event-loop thread (through LuaJIT FFI): nffi_runtime_*,
 *     nffi_task_*, nffi_wake_*, nffi_drain;
 *   - runtime threads (the loaded runtime library): ngx_http_lua_ffi_task_poll,
 *     ngx_http_lua_ffi_get_req, ngx_http_lua_ffi_respond and their
 *     ngx_http_lua_nonblocking_ffi_ aliases, exactly as lua-resty-ffi defines them.
 * Runtime threads never touch the Lua VM. The inspector agent's own helpers
 * (breakpoint hook, watchpoints, a coroutine's request, path checks) are in
 * nffi_inspect.h.
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
    uint64_t lat_count[4]; /* tasks per latency kind: the sampled ones weighted (below) */
    uint64_t lat_sum_ns[4];
    uint64_t lat_max_ns[4]; /* of the tasks stamped */
    uint64_t lat_samples;  /* tasks whose latencies were stamped and recorded */
    int64_t lat_sample_every; /* beyond a task a millisecond (each standing for
                               * itself), 1 in this many tasks is stamped and
                               * stands for as many (1: all; 0: not
                               * instrumented: the build, or the runtime) */
    uint64_t spins_in_flight; /* a poller's spins from another CPU than the worker's
                               * that found its next batch (more than 2 live;
                               * NFFI_FLIGHT_SPIN_US, off by default) */
    uint64_t spins_lost;   /* such spins that lost their CPU to something else on it
                            * (another vCPU, another thread): each stops them a while */
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
/* Keeps the already loaded library at path (as ffi.load opened it) mapped until
 * the process ends: LuaJIT closes what ffi.load opened when the worker's Lua VM
 * is closed at exit, while the runtime's threads still run its code. 0, or -1
 * when no library of that name is loaded. */
int nffi_pin_library(const char *path);
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
/* Runtime-thread side spinning before sleeping in poll, microseconds (0 = none),
 * by every poller each time. Never set (and no NFFI_POLL_SPIN_US), a runtime
 * spins adaptively: up to 25 us, one poller at a time, skipping more chances
 * the more spins in a row found nothing. A poller pinned to a single CPU
 * never spins. */
void nffi_runtime_set_poll_spin(nffi_runtime *rt, int spin_us);
/* Latencies of 1 in every tasks (<= 1: all), beyond the task a millisecond
 * that is always stamped (the first 1 ms or more after the last stamped one,
 * by the coarse clock: as late as its lag, one to two ticks).
 * Default 64, or NFFI_LAT_SAMPLE. */
void nffi_runtime_set_lat_sample(nffi_runtime *rt, int every);
/* on == 0: rt's tasks go uninstrumented, as in libnffi_noinst: no stamps or
 * latencies, and enqueued, resumed, timeouts, rejected and late do not move
 * (0 for a runtime never on; stats say lat_sample_every 0). on != 0 (the
 * default): instrumented. A change only while no task of rt is live (else
 * NFFI_EINVAL; setting what it already is always succeeds): each task is
 * counted from submit to free by one setting, so the counters stay balanced
 * and cover the tasks submitted while on. Worker thread. */
int nffi_runtime_set_instrumented(nffi_runtime *rt, int on);
/* on != 0: every task of every runtime is stamped whatever the sampling (the
 * task hook reports each task's latencies). Worker thread. */
void nffi_latency_all(int on);

/* ---- tasks (worker thread) ---- */
/* Copies req (NUL-terminated copy, NULs inside allowed). Returns NULL with *status
 * set to NFFI_EFULL / NFFI_EFINISHED / NFFI_ENOMEM / NFFI_EINVAL. */
nffi_task *nffi_task_submit(nffi_runtime *rt, const char *method, size_t method_len,
                            const char *req, size_t req_len, uint32_t waiter, int *status);
/* As nffi_task_submit, but req is copied into the task by the runtime thread
 * that polls it, not now (the runtime gets a private copy either way). req
 * must stay alive and unchanged until the task is freed: nffi_task_release,
 * an nffi_task_abandon that returns 1, or, after one that returns 0, until
 * nffi_borrow_freed hands back its id; or until nffi_borrow_quiesce. */
nffi_task *nffi_task_submit_borrowed(nffi_runtime *rt, const char *method, size_t method_len,
                                     const char *req, size_t req_len, uint32_t waiter,
                                     int *status);
/* Ids of borrowed-request tasks abandoned while held (abandon returned 0) and
 * freed since the last call, up to max; returns the count. Worker thread. */
int nffi_borrow_freed(uint64_t *out, int max);
/* Before the memory of borrowed requests goes for good with their tasks
 * live (the worker's Lua state closing): copies every one no poller took yet
 * and waits out copies in progress. Returns 1 when it had to wait. Worker. */
int nffi_borrow_quiesce(void);
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

/* ---- eventfd wake-up path (worker thread) ----
 * Instead of the wake socket and its pump, responses can signal an eventfd that
 * nginx's event loop watches (libnffi_ngx.so registers it, see below); its read
 * handler calls nffi_fast_drain, which posts each waiter's lua-nginx-module
 * semaphore directly. Tasks given a semaphore (nffi_task_set_sema) are
 * delivered by posting it, from whichever drain takes them (nffi_fast_drain or
 * nffi_drain); a drain never returns them. */
typedef struct nffi_wake_stats {
    uint64_t fast_wakeups;   /* runs of nffi_fast_drain (eventfd read handler) */
    uint64_t fast_posted;    /* semaphores posted by libnffi (either drain) */
    uint64_t fast_max_batch; /* most tasks one nffi_fast_drain delivered */
    uint64_t signals;        /* wake-ups written by runtime threads (eventfd or socket) */
    int64_t outstanding;     /* tasks whose semaphore libnffi has yet to post */
    int32_t fast_on;         /* 1 while responses signal the eventfd */
    int32_t fast_fd;         /* the eventfd, -1 before the first install */
    uint64_t loop_hits;      /* responses the event loop's short poll found (no eventfd) */
} nffi_wake_stats;
/* post is lua-nginx-module's int ngx_http_lua_ffi_sema_post(sema, int n).
 * Creates the eventfd (nonblocking; once per process, kept for its lifetime)
 * and makes responses signal it. Returns the fd or -errno / NFFI_EINVAL. */
int nffi_fast_install(void *post);
/* Responses signal the wake socket again. Delivers what is done now and posts
 * the semaphore of every task still outstanding without a result (its waiter
 * sees the task not READY and falls back to the pump). The eventfd stays open:
 * a runtime thread may be about to write to it. */
void nffi_fast_remove(void);
/* The eventfd's read handler: reads the eventfd and delivers every done task
 * (semaphore tasks posted, others handed to the pump via nffi_drain and a wake
 * byte). Returns how many semaphores it posted. */
int nffi_fast_drain(void);
/* Before yielding on the semaphore: libnffi posts sema (a ngx_http_lua_sema_t *)
 * once the task is READY. Cleared by nffi_task_abandon. 0 or NFFI_EINVAL. */
int nffi_task_set_sema(nffi_task *t, void *sema);
void nffi_wake_stats_get(nffi_wake_stats *out);
/* hook: void (*)(void), called at most once per turn of the event loop when a
 * submit found pollers asleep; it must make nginx call nffi_kick_pollers later
 * in the same turn (libnffi_ngx.so posts an event). NULL: submits wake pollers
 * at once again (and whatever was noted is woken now). */
void nffi_fast_set_kick(void *hook);
/* Wakes the sleeping pollers of the runtimes submits noted since the last call. */
void nffi_kick_pollers(void);
/* The event loop's short poll for calls made one after another (wake.c):
 * hook is void (*)(void), called by nffi_task_set_sema while at most 2 waiters
 * are outstanding (NULL: never). nffi_fast_poll_begin returns 1 when the poll
 * may start (responses stop signalling the eventfd until it ends), 0 when a
 * signal is pending anyway. nffi_fast_poll(last): -1 while nothing is done (and
 * not last), else delivers as nffi_fast_drain does, returns the semaphores
 * posted, and the poll is over. */
void nffi_fast_set_wait(void *hook);
int nffi_fast_poll_begin(void);
int nffi_fast_poll(int last);

/* ---- libnffi_ngx.so: the eventfd registered in nginx's event loop ----
 * Built against the installed nginx's headers (Debian nginx-dev), loaded into a
 * worker by FFI after libnffi. nffi_ngx_start checks that the headers are the
 * running nginx's (version and module signature of ngx_core_module), that the
 * event method is epoll, that this is a worker not exiting, and finds
 * ngx_http_lua_ffi_sema_post; then registers the eventfd with
 * ngx_get_connection + ngx_handle_read_event. Returns 0, or -1 with why in
 * reason. fault (tests): 1 acts as if the signature differed, 2 as if the
 * event method were not epoll. The connection is idle, so a graceful shutdown
 * tells it; it closes once no waiter is outstanding. */
int nffi_ngx_start(int fault, char *reason, int reason_max);
int nffi_ngx_active(void);
/* The loop's short poll, microseconds (default 30; 0: never; at most 100 ms). */
void nffi_ngx_set_poll_us(int us);
/* Closes the connection when the worker is exiting and nobody waits. */
void nffi_ngx_exit_check(void);

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
