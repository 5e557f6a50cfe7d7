/* Internal shared definitions of libnffi. Not part of the contract. */
#ifndef NFFI_INTERNAL_H
#define NFFI_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "nffi.h"

#define NFFI_EXPORT __attribute__((visibility("default")))
#define NFFI_HIDDEN __attribute__((visibility("hidden")))

#ifdef NFFI_NO_INSTRUMENT
#define NFFI_INST 0
#else
#define NFFI_INST 1
#endif
/* A runtime's tasks are instrumented unless the build is not or the runtime
 * opted out (nffi_runtime_set_instrumented, while none of its tasks is live):
 * then they cost what libnffi_noinst's cost (the pollers' stamps follow
 * lat_w, 0). */
#define NFFI_INST_RT(rt) (NFFI_INST && (rt)->inst)

/* Relaxed atomics: enough for counters and snapshot fields that are only read
 * for display; ordering-sensitive places spell out their own memory order. */
#define NFFI_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define NFFI_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define NFFI_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
/* Single-writer counter: no RMW needed, the store is atomic only so that
 * concurrent readers are not a data race. */
#define NFFI_BUMP(p, v) NFFI_STORE((p), NFFI_LOAD(p) + (v))

#define NFFI_HIST_SUB 4                 /* sub-buckets per power of two */
#define NFFI_HIST_MAXEXP 40             /* values >= 2^41 ns share the last bucket */
#define NFFI_HIST_N (NFFI_HIST_SUB + (NFFI_HIST_MAXEXP - 1) * NFFI_HIST_SUB)

typedef struct nffi__hist {
    uint64_t count, sum, max;
    uint64_t bucket[NFFI_HIST_N];
} nffi__hist;

/* Values of nffi_task.direct (the spin handshake word). */
enum { NFFI__DIRECT_IDLE = 0, NFFI__DIRECT_SPINNING = 1, NFFI__DIRECT_DONE = 2 };

struct nffi_task {
    nffi_runtime *rt;
    nffi_task *qprev, *qnext;   /* pending queue; guarded by rt->qlock */
    nffi_task *dnext;           /* done list / worker backlog */
    nffi_task *lprev, *lnext;   /* live registry of its runtime; worker-only */
    nffi_task *gprev, *gnext;   /* live registry of the process (id order); worker-only */
    uint64_t id;
    int state;                  /* NFFI_TASK_*; atomic (read by snapshots) */
    int direct;                 /* spin handshake; atomic */
    int abandoned;              /* worker-only */
    int resumed;                /* worker-only: latencies already recorded */
    int lent;                   /* worker-only: submitted borrowed (borrow.c) */
    int rc;                     /* atomic: written by respond, read by snapshots */
    uint32_t waiter;
    /* Weight of its latencies in the histograms: 0 = not stamped past
     * t_enqueued (a task the sampling left out), else how many tasks it
     * stands for. Written by submit before the task is queued, then only
     * read (by the runtime thread that polls it, after qlock). */
    uint32_t lat_w;
    void *sema;                 /* worker-only: semaphore libnffi posts when READY */
    char *rsp;
    size_t rsp_len;
    int64_t t_enqueued, t_polled, t_responded, t_resumed;
    char method[32];
    size_t req_len;
    /* The caller's bytes while a borrowed request (borrow.c) waits for the
     * poller that copies them into req[]; NULL once copied, or for a request
     * copied at submit. Set before the task is queued; cleared (release) by
     * that poller, or under qlock by nffi_borrow_quiesce while PENDING. */
    const char *borrowed;
    size_t cap;                 /* inline request capacity (a freelist class or exact) */
    char req[];                 /* cap + 1 bytes, NUL-terminated */
};

/* A spin's back-off: miss spins in a row found nothing, skip chances left
 * that sleep at once (see nffi__poll_spin_backoff). */
typedef struct nffi__backoff {
    int miss, skip;
} nffi__backoff;

struct nffi_runtime {
    /* qlock guards the pending queue (qhead/qtail), sleepers, and serializes
     * the PENDING -> POLLED transition against abandon. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;       /* pollers sleep here; signalled by submit/finish */
    nffi_task *qhead, *qtail;
    int sleepers;               /* pollers blocked in qcond; under qlock */
    /* Tasks handed to runtime threads: bumped under qlock (no atomic RMW, on
     * the line poll owns already), read relaxed by stats. */
    uint64_t polled;
    int finished;               /* set under qlock, also read lock-free by spinners */
    int64_t depth;              /* queue length; written under qlock, read lock-free */
    int max_queue;
    int spin_us;                /* atomic: set by the worker, read by pollers */
    /* Atomic. 1 while spin_us is the default (adaptive): then one poller at a
     * time spins (spinning), and a spin that found nothing makes the next
     * ones skip (spin_backoff: k misses in a row skip 2^k - 1 chances). */
    int spin_adaptive;
    int spinning;               /* atomic: 1 while a poller spins adaptively */
    nffi__backoff spin_backoff; /* written by the poller holding spinning */
    nffi__backoff flight_backoff; /* the same, for the spin in flight */
    int flight_us;              /* NFFI_FLIGHT_SPIN_US; 0: pollers never spin in flight */
    uint64_t flight_hits, flight_lost; /* by the poller holding spinning; read by stats */
    int64_t spin_beat;          /* atomic: the spinner's clock at its last check */

    /* Worker-only from here (plus relaxed readers of the counters). The
     * live list and instrumentation's per-task fields share one line, apart
     * from the pollers' above (spin_beat is written while one spins); a
     * submit still touches depth and the stage fields too. The bench read
     * no difference pinned at 32 coroutines (within its +-1%). */
    nffi_task *live_head __attribute__((aligned(64)));
    nffi_task *live_tail;
    int64_t live;
    int inst;                   /* 1 unless opted out */
    /* Latency sampling (see NFFI__LAT_GAP_NS): a task is stamped past
     * t_enqueued when lat_last (the last stamped task's t_enqueued) is old
     * enough, else 1 in lat_every, lat_rng picking which; lat_samples counts
     * the tasks whose latencies were recorded. */
    int lat_every;
    uint32_t lat_rng;
    int64_t lat_last;
    uint64_t enqueued, resumed;
    /* touched now and then */
    uint64_t rejected, timeouts, late;
    uint64_t lat_samples;
    char *name;
    /* Written by runtime threads on every task: a cache line of their own,
     * apart from what the worker writes on every task (live, hist).
     * responded: atomic RMW (several pollers may respond at once), on this
     * line the worker does not write; responses a spinning worker took
     * directly count in responded_direct. in_flight is polled - both. */
    uint64_t responded __attribute__((aligned(64)));
    uint64_t responded_direct;  /* atomic RMW; only with wait spinning */
    nffi__hist hist[4] __attribute__((aligned(64)));
    /* Response buffers the worker hands back for a poller to free (see
     * nffi__rsp_free): a stack linked through the buffers' own first bytes,
     * pushed by the worker and taken whole by a poller; atomic. Its line is
     * shared by the two sides and by nothing else. */
    void *freeback __attribute__((aligned(64)));
    int64_t freeback_bytes;     /* atomic RMW: what the stack holds */
    /* Deferred poller wake-up (nffi_fast_set_kick); worker-only. */
    int kick_pending;
    nffi_runtime *kick_next;
    /* Tasks submitted this turn of the event loop while many are live,
     * linked by qprev/qnext; they join the queue at the kick, under one
     * qlock (see nffi__stage). Worker-only; staged is read by stats. */
    nffi_task *stage_head, *stage_tail;
    int64_t staged;
};

/*
 * A runtime's pollers spin this long before sleeping unless told otherwise
 * (nffi_runtime_set_poll_spin, NFFI_POLL_SPIN_US), and only adaptively: one
 * poller at a time, and backing off while spins find nothing. A sleeping
 * poller costs a futex wake in the worker and a wake-up of a halted vCPU
 * (~12 µs of queue latency a call at 4 KiB x 1 on the 2-vCPU VM); sequential
 * calls come back within this window, sparse ones make it skip.
 */
#define NFFI__SPIN_DEFAULT_US 25
#define NFFI__SPIN_MISS_MAX 6           /* skip at most 63 chances in a row */
/* ...and only while at most this many tasks of the runtime are live: the
 * sequential case, where the worker sleeps until the response and a sleeping
 * poller adds a second wake-up to every call. Many live tasks: the worker is
 * busy resuming them, and spinning lost to sleeping under load (4 KiB x 32:
 * p99 3.9 ms vs 135 µs in one run at load 5). */
#define NFFI__SPIN_LIVE_MAX 2
/*
 * With more live and NFFI_FLIGHT_SPIN_US=<us> in the worker's environment, a
 * poller that finds the queue empty spins that long for the worker's next
 * batch, one at a time, but only from another CPU than the worker's, and only
 * while its spin keeps its CPU: 64 rounds of the loop that take longer than
 * NFFI__SPIN_GAP_NS mean something else ran there (a vCPU the host took away
 * to run the worker's, or a thread of this guest), and the next 63 chances
 * sleep. It saves the worker's kick the wake-up of a sleeping poller on
 * another CPU (~6 µs of the worker's time on the 2-vCPU VM). Off by default:
 * since the kick wakes a sleeper for every task beyond a spinner's one (a
 * spinner may lose its CPU), 50 µs bought 2-7% of calls/s at 32 light threads
 * unpinned and cost p99 in most runs (4 KiB: 257 against 164 µs; 64 KiB:
 * 460-510 against 317-333 µs).
 */
#define NFFI__SPIN_GAP_NS 20000
/* The kick takes a spinner for one only while its heartbeat (each 64 rounds,
 * ~1.2 us on the 2-vCPU VM) is this fresh: one off its CPU wakes a sleeper. */
#define NFFI__SPIN_BEAT_NS 5000

/*
 * Latency sampling. Every task of an instrumented runtime gets its t_enqueued
 * stamp (ages in the task views, --older-than, the cross-worker sort), from
 * the coarse clock unless it is sampled (nffi__lat_pick), and every counter
 * counts every such task. The three other stamps (polled, responded,
 * resumed), an exact enqueue stamp and the histograms cost four clock reads
 * a task and four histogram lines, ~110-150 ns: 1-2% of a sequential call
 * (~10 us on the 2-vCPU VM), and ~75 ns of the ~1.1 us of CPU a call takes
 * at 64 B x 32 (bench/native/inst_cost). So a task is stamped when its
 * runtime's last stamped task was enqueued NFFI__LAT_GAP_NS or more before
 * it by the coarse clock (calls ~1 ms plus that clock's lag apart, every one),
 * and else 1 in lat_every (NFFI__LAT_EVERY_DEFAULT, NFFI_LAT_SAMPLE=<n>,
 * 1 = all), picked at random (a fixed stride would alias with the batches of
 * a steady load).
 * In the histograms a task the gap picked weighs 1 and one the draw picked
 * lat_every: each is weighted by the inverse of the chance it had, given the
 * tasks before it, so counts, sums and quantiles estimate every task's (the
 * weights undo the bias towards quiet periods, where all are stamped). While
 * a task hook is armed (nffi_latency_all) every task is stamped: it reports
 * each one's latencies. (Until issue 15's last round, "few live" meant stamp
 * all: 4 or fewer; a sequential caller at 100,000 calls/s paid all four
 * stamps on every call.)
 */
#define NFFI__LAT_GAP_NS 1000000
#define NFFI__LAT_EVERY_DEFAULT 64
NFFI_HIDDEN extern int nffi__lat_all;

/* Where the last walks of the process-wide live registry stopped (nffi_tasks,
 * nffi_tasks_count): each hint is the last task a walk visited, or NULL.
 * nffi__task_free moves a hint off a task it frees to the task before it, so
 * a hint always points at a live task and the next page starts right after
 * it. Worker-only, like the registry: no lock. */
#define NFFI__HINTS 4

typedef struct nffi__registry {
    nffi_task *head, *tail;     /* every live task of every runtime, in id order */
    int64_t count;
    nffi_task *hint[NFFI__HINTS];
    unsigned hint_next;         /* the slot the next unhinted walk overwrites */
} nffi__registry;

NFFI_HIDDEN extern nffi__registry nffi__live;

NFFI_HIDDEN void nffi__info(const nffi_task *t, nffi_task_info *o);
NFFI_HIDDEN void nffi__hist_add(nffi__hist *h, int64_t v, uint64_t w);
NFFI_HIDDEN double nffi__hist_quantile(const nffi__hist *h, double q);

NFFI_HIDDEN void nffi__task_free(nffi_task *t);
/* borrow.c: a borrowed request's task abandoned while held was freed. */
NFFI_HIDDEN void nffi__borrow_note_freed(const nffi_task *t);
/* borrow.c: the poller copies a borrowed request into the task. */
NFFI_HIDDEN void nffi__borrow_copy(nffi_task *t);
NFFI_HIDDEN extern int nffi__borrow_copy_delay_us;      /* tests only */

/* The request's bytes, for the worker (snapshots): the caller's until the
 * poller's copy is complete. */
static inline const char *nffi__task_req(const nffi_task *t)
{
    const char *b = __atomic_load_n(&t->borrowed, __ATOMIC_ACQUIRE);
    return b != NULL ? b : t->req;
}
/* The waiter of t gave up: forget its semaphore (wake.c). Worker thread. */
NFFI_HIDDEN void nffi__sema_forget(nffi_task *t);
/* Worker thread: wakes rt's sleeping pollers now, or once at the end of this
 * turn of the event loop when a kick hook is set (task.c). */
NFFI_HIDDEN void nffi__wake_pollers(nffi_runtime *rt);
/* Worker thread: rt's staged tasks join its queue now (task.c). */
NFFI_HIDDEN void nffi__stage_flush(nffi_runtime *rt);
/* Worker thread: t waits on its runtime's stage. While a runtime's stage is
 * not empty every task it is given is staged, so the stage holds exactly its
 * tasks from the stage's first one on (ids grow in submit order). */
static inline int nffi__task_staged(const nffi_task *t)
{
    const nffi_task *h = t->rt->stage_head;
    return h != NULL && t->id >= h->id;
}
/*
 * Response buffers of at least this many bytes are freed by a poller, not by
 * the worker (task.c), while the stack holds less than the cap. A response is
 * malloc'd by a runtime thread, in that thread's arena; the worker's free of
 * a buffer past glibc's tcache takes that arena's lock against the runtime's
 * next malloc (4 KiB x 32, the worker and the pollers on different CPUs:
 * _int_free, cfree and the arena lock's futex calls were ~10% of the
 * worker's samples). Smaller buffers go to glibc's lock-free bins anyway.
 */
#define NFFI__FREEBACK_MIN 1024
#define NFFI__FREEBACK_CAP ((int64_t)4 << 20)
NFFI_HIDDEN void nffi__fork_check(void);

/* Hardware watchpoints for the breakpoint hook (src/watch.c); worker thread. */
#define NFFI_WATCH_MAX 4
NFFI_HIDDEN void nffi__watch_on_trap(void (*cb)(int late));
NFFI_HIDDEN int nffi__watch_set(const uintptr_t *at, int n);
NFFI_HIDDEN int nffi__watch_enable(void);
NFFI_HIDDEN void nffi__watch_disable(void);
NFFI_HIDDEN void nffi__watch_close(void);
NFFI_HIDDEN int nffi__watch_count(void);
NFFI_HIDDEN int nffi__watch_enabled(void);
NFFI_HIDDEN int nffi__watch_health(char *buf, size_t size);
NFFI_HIDDEN int nffi__watch_faulty(void);

/* The clock of every stamp: CLOCK_MONOTONIC, one vDSO read (inlined: no hop
 * through an exported function's PLT entry). ~30 ns on the 2-vCPU KVM VM
 * (kvm-clock); the 4 stamps of a task are most of what instrumentation costs
 * (bench/native/inst_cost.c). rdtsc (~11 ns) is not used: that kernel marks
 * the TSC unstable (tsc=unstable, kvm-clock), and stamps must be on the clock
 * every worker of the host shares (the inspector sorts tasks across workers
 * by t_enqueued). CLOCK_MONOTONIC_COARSE (~6 ns) ticks every 4 ms there. */
static inline int64_t nffi__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void nffi__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif
