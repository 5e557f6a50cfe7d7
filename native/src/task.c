/* Tasks: submit/poll (the bounded pending queue), spin, result, release, abandon. */
#include <sched.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "nffi_internal.h"

/* Recyclable inline capacities. Two classes so that a typical small request
 * does not pin 4 KiB while queued; larger requests get an exact malloc. */
#define NFFI__NCLASS 2
static const size_t nffi__class_cap[NFFI__NCLASS] = {256, 4096};
static const int nffi__class_keep[NFFI__NCLASS] = {256, 64};    /* ~330 KiB idle at most */

/* Worker-only state: no locks. Tasks are allocated and freed only by the
 * worker thread (submit, release, abandon, drain), so the freelists are too. */
static nffi_task *nffi__freelist[NFFI__NCLASS];
static int nffi__nfree[NFFI__NCLASS];
static uint64_t nffi__last_id;
static int64_t nffi__last_stamp;    /* the newest t_enqueued given (submit) */
nffi__registry nffi__live;
int nffi__lat_all;      /* nffi_latency_all; worker-only, like submit */

static int nffi__class_of(size_t cap)
{
    for (int c = 0; c < NFFI__NCLASS; c++)
        if (cap == nffi__class_cap[c])
            return c;
    return -1;
}

static nffi_task *nffi__task_alloc(size_t req_len)
{
    nffi_task *t = NULL;
    size_t cap = req_len;
    for (int c = 0; c < NFFI__NCLASS; c++) {
        if (req_len <= nffi__class_cap[c]) {
            cap = nffi__class_cap[c];
            if ((t = nffi__freelist[c]) != NULL) {
                nffi__freelist[c] = t->dnext;
                nffi__nfree[c]--;
            }
            break;
        }
    }
    if (t == NULL) {
        if (cap > SIZE_MAX - sizeof(*t) - 1)
            return NULL;
        t = malloc(sizeof(*t) + cap + 1);
        if (t == NULL)
            return NULL;
    }
    memset(t, 0, sizeof(*t));
    t->cap = cap;
    return t;
}

static void nffi__task_recycle(nffi_task *t)
{
    int c = nffi__class_of(t->cap);
    if (c >= 0 && nffi__nfree[c] < nffi__class_keep[c]) {
        t->dnext = nffi__freelist[c];
        nffi__freelist[c] = t;
        nffi__nfree[c]++;
    } else {
        free(t);
    }
}

static void nffi__freeback_take(nffi_runtime *rt);

/* Worker thread. A buffer handed back holds the stack's link and its length
 * in its first 16 bytes (it has at least NFFI__FREEBACK_MIN). The worker
 * frees it itself after finish (the pollers may have gone for good), when the
 * stack would pass its cap, and when this was the runtime's last live task:
 * an idle runtime's pollers sleep and would keep the stack, and with nothing
 * in flight nothing contends for the arenas (it takes the stack back too). */
static void nffi__rsp_free(nffi_runtime *rt, char *rsp, size_t len)
{
    if (rt->live == 0) {
        free(rsp);
        nffi__freeback_take(rt);
        return;
    }
    if (rsp == NULL)
        return;
    if (len < NFFI__FREEBACK_MIN || NFFI_LOAD(&rt->finished) ||
        __atomic_load_n(&rt->freeback_bytes, __ATOMIC_RELAXED) + (int64_t)len > NFFI__FREEBACK_CAP) {
        free(rsp);
        return;
    }
    __atomic_add_fetch(&rt->freeback_bytes, (int64_t)len, __ATOMIC_RELAXED);
    ((size_t *)(void *)rsp)[1] = len;
    void *head = __atomic_load_n(&rt->freeback, __ATOMIC_RELAXED);
    do {
        *(void **)(void *)rsp = head;
    } while (!__atomic_compare_exchange_n(&rt->freeback, &head, rsp, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
}

/* Runtime thread: frees what the worker handed back, in this thread (its
 * own arena, most often: the buffers came from the runtime's threads). The
 * worker too, for an idle runtime. */
static void nffi__freeback_take(nffi_runtime *rt)
{
    if (__atomic_load_n(&rt->freeback, __ATOMIC_RELAXED) == NULL)
        return;
    void *p = __atomic_exchange_n(&rt->freeback, NULL, __ATOMIC_ACQUIRE);
    int64_t bytes = 0;
    while (p != NULL) {
        void *next = *(void **)p;
        bytes += (int64_t)((size_t *)p)[1];
        free(p);
        p = next;
    }
    __atomic_sub_fetch(&rt->freeback_bytes, bytes, __ATOMIC_RELAXED);
}

void nffi__task_free(nffi_task *t)
{
    nffi_runtime *rt = t->rt;
    nffi__sema_forget(t);
    if (t->lprev != NULL)
        t->lprev->lnext = t->lnext;
    else
        rt->live_head = t->lnext;
    if (t->lnext != NULL)
        t->lnext->lprev = t->lprev;
    else
        rt->live_tail = t->lprev;
    NFFI_BUMP(&rt->live, -1);

    nffi__registry *g = &nffi__live;
    for (int i = 0; i < NFFI__HINTS; i++)
        if (g->hint[i] == t)
            g->hint[i] = t->gprev;
    if (t->gprev != NULL)
        t->gprev->gnext = t->gnext;
    else
        g->head = t->gnext;
    if (t->gnext != NULL)
        t->gnext->gprev = t->gprev;
    else
        g->tail = t->gprev;
    g->count--;

    if (t->lent && t->abandoned)
        nffi__borrow_note_freed(t);
    nffi__rsp_free(rt, t->rsp, t->rsp_len);
    nffi__task_recycle(t);
}

NFFI_EXPORT void nffi_latency_all(int on)
{
    nffi__lat_all = on != 0;
}

static nffi_task *nffi__reject(nffi_runtime *rt, int *status, int code)
{
    if (NFFI_INST_RT(rt))
        NFFI_BUMP(&rt->rejected, 1);
    *status = code;
    return NULL;
}

/*
 * Staging. While many of a runtime's tasks are live the worker is resuming
 * a batch of coroutines in one turn of the event loop, each of which submits
 * again. Queueing each at once cost the worker a qlock round trip per task,
 * on a line the pollers hold (4 KiB x 32 with the worker and the pollers on
 * different CPUs: pthread_mutex_lock was 7.5% of the worker's samples, the
 * futex wakes of the kick another 7.8%). With a kick hook, such tasks go on
 * a worker-only list instead and join the queue together at the kick, at
 * the end of the turn, under one qlock; the kick wakes one sleeping poller
 * and each poller that finds more queued wakes the next (nffi_kick_pollers,
 * ngx_http_lua_ffi_task_poll), so the futex wakes run on the pollers' CPU.
 * Calls made one after another (few live) are queued at once as before: a
 * spinning poller takes them without waiting for the turn to end. A staged
 * task is PENDING like a queued one; abandon unlinks it without qlock.
 */
static void (*nffi__kick_hook)(void);

/* 1 while a poller spins and its heartbeat is fresh (NFFI__SPIN_BEAT_NS): it
 * will take the next task itself. The clock is read only while one spins. */
static int nffi__spinner(nffi_runtime *rt)
{
    if (!__atomic_load_n(&rt->spinning, __ATOMIC_SEQ_CST))
        return 0;
    return nffi__now() - NFFI_LOAD(&rt->spin_beat) < NFFI__SPIN_BEAT_NS;
}

/* The pending queue and the stage are lists linked by qprev/qnext. */
static void nffi__qappend(nffi_task **head, nffi_task **tail, nffi_task *t)
{
    t->qnext = NULL;
    t->qprev = *tail;
    if (*tail != NULL)
        (*tail)->qnext = t;
    else
        *head = t;
    *tail = t;
}

static void nffi__qunlink(nffi_task **head, nffi_task **tail, nffi_task *t)
{
    if (t->qprev != NULL)
        t->qprev->qnext = t->qnext;
    else
        *head = t->qnext;
    if (t->qnext != NULL)
        t->qnext->qprev = t->qprev;
    else
        *tail = t->qprev;
    t->qnext = t->qprev = NULL;
}

static int nffi__stage(nffi_runtime *rt, nffi_task *t)
{
    if (nffi__kick_hook == NULL || (rt->stage_head == NULL && rt->live < NFFI__SPIN_LIVE_MAX))
        return 0;
    t->id = ++nffi__last_id;
    nffi__qappend(&rt->stage_head, &rt->stage_tail, t);
    NFFI_STORE(&rt->staged, rt->staged + 1);
    return 1;
}

/* Worker thread, qlock held: the staged tasks join the queue, in order. */
static void nffi__stage_flush_locked(nffi_runtime *rt)
{
    nffi_task *h = rt->stage_head;
    if (h == NULL)
        return;
    h->qprev = rt->qtail;
    if (rt->qtail != NULL)
        rt->qtail->qnext = h;
    else
        rt->qhead = h;
    rt->qtail = rt->stage_tail;
    NFFI_STORE(&rt->depth, rt->depth + rt->staged);
    rt->stage_head = rt->stage_tail = NULL;
    NFFI_STORE(&rt->staged, 0);
}

void nffi__stage_flush(nffi_runtime *rt)
{
    if (rt->stage_head == NULL)
        return;
    pthread_mutex_lock(&rt->qlock);
    nffi__stage_flush_locked(rt);
    pthread_mutex_unlock(&rt->qlock);
}

/* The random draw of the sampling: the weight of a task it picks, lat_every,
 * or 0. See NFFI__LAT_GAP_NS. Worker thread. */
static uint32_t nffi__lat_draw(nffi_runtime *rt, int every)
{
    uint32_t x = rt->lat_rng;           /* xorshift32: a few cycles, never 0 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rt->lat_rng = x;
    return x < UINT32_MAX / (uint32_t)every ? (uint32_t)every : 0;
}

/* Stamps t's t_enqueued and picks whether its latencies are stamped too, and
 * with what weight (t->lat_w; 0: not). Worker thread. */
static void nffi__lat_pick(nffi_runtime *rt, nffi_task *t)
{
    int every = rt->lat_every;
    int all = every <= 1 || nffi__lat_all;      /* every task sampled: no coarse read */
    /* A task is stamped from the coarse clock (~4 ns a read) unless it is
     * sampled: never older than the last stamp any task got, nor than the
     * coarse clock (up to ~7 ms behind here: one to two 4 ms ticks), so a
     * long handler between submits cannot age it; stamps never decrease in
     * id order (nffi_tasks_count relies on it). Its age may read older by up
     * to that lag. A sampled task's stamps (its latencies) are exact. The
     * exact clock read on every submit was most of what instrumentation cost
     * a task at 32 live (inst_cost: ~25 of ~32 ns). */
    int64_t now = 0;
    if (!all) {
        struct timespec c;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &c);
        int64_t coarse = (int64_t)c.tv_sec * 1000000000 + c.tv_nsec;
        now = coarse > nffi__last_stamp ? coarse : nffi__last_stamp;
    }
    /* The gap is decided on that clock for every task, before the draw: a
     * task the gap picks was certain to be (weight 1), any other had 1
     * chance in lat_every (weight lat_every). (Deciding it on an exact clock
     * only for the tasks the draw picked gave some of those weight 1, and
     * counts read 0.5-0.9 of the tasks with long turns.) The coarse clock's
     * lag makes the gap come up to that much late. */
    uint32_t w = all || now - rt->lat_last >= NFFI__LAT_GAP_NS ? 1 : nffi__lat_draw(rt, every);
    if (w != 0) {
        now = nffi__now();
        rt->lat_last = now;
    }
    t->t_enqueued = now;
    nffi__last_stamp = now;
    t->lat_w = w;
}

static nffi_task *nffi__submit(nffi_runtime *rt, const char *method, size_t method_len,
                               const char *req, size_t req_len, uint32_t waiter,
                               int *status, int borrow)
{
    int ignored;
    if (status == NULL)
        status = &ignored;
    if (rt == NULL || (req == NULL && req_len > 0) || (method == NULL && method_len > 0)) {
        *status = NFFI_EINVAL;
        return NULL;
    }
    /* Fail fast before copying what may be a large request; rechecked below. */
    if (__atomic_load_n(&rt->finished, __ATOMIC_ACQUIRE))
        return nffi__reject(rt, status, NFFI_EFINISHED);
    if (NFFI_LOAD(&rt->depth) + rt->staged >= rt->max_queue)
        return nffi__reject(rt, status, NFFI_EFULL);

    nffi_task *t = nffi__task_alloc(req_len);
    if (t == NULL) {
        *status = NFFI_ENOMEM;
        return NULL;
    }
    t->rt = rt;
    t->waiter = waiter;
    size_t ml = method_len < sizeof(t->method) ? method_len : sizeof(t->method) - 1;
    if (ml > 0)
        memcpy(t->method, method, ml);
    if (borrow && req_len > 0) {
        /* the poller that takes it copies it (nffi__borrow_copy) */
        t->borrowed = req;
        t->lent = 1;
    } else {
        if (req_len > 0)
            memcpy(t->req, req, req_len);
        t->req[req_len] = '\0';
    }
    t->req_len = req_len;
    if (NFFI_INST_RT(rt))
        nffi__lat_pick(rt, t);

    if (nffi__stage(rt, t)) {
        nffi__wake_pollers(rt);
    } else {
        pthread_mutex_lock(&rt->qlock);
        int code = rt->finished ? NFFI_EFINISHED : rt->depth >= rt->max_queue ? NFFI_EFULL : NFFI_OK;
        if (code != NFFI_OK) {
            pthread_mutex_unlock(&rt->qlock);
            nffi__task_recycle(t);
            return nffi__reject(rt, status, code);
        }
        t->id = ++nffi__last_id;
        nffi__qappend(&rt->qhead, &rt->qtail, t);
        NFFI_STORE(&rt->depth, rt->depth + 1);
        /* A spinning poller watches depth and needs no syscall; only a sleeper
         * does, for the tasks beyond the one an adaptive spinner takes. */
        int wake = rt->sleepers > 0 && rt->depth > nffi__spinner(rt);
        pthread_mutex_unlock(&rt->qlock);
        if (wake)
            nffi__wake_pollers(rt);
    }

    t->lprev = rt->live_tail;
    if (rt->live_tail != NULL)
        rt->live_tail->lnext = t;
    else
        rt->live_head = t;
    rt->live_tail = t;
    NFFI_BUMP(&rt->live, 1);

    nffi__registry *g = &nffi__live;
    t->gprev = g->tail;
    if (g->tail != NULL)
        g->tail->gnext = t;
    else
        g->head = t;
    g->tail = t;
    g->count++;
    if (NFFI_INST_RT(rt))
        NFFI_BUMP(&rt->enqueued, 1);
    *status = NFFI_OK;
    return t;
}

NFFI_EXPORT nffi_task *nffi_task_submit(nffi_runtime *rt, const char *method, size_t method_len,
                                        const char *req, size_t req_len, uint32_t waiter,
                                        int *status)
{
    return nffi__submit(rt, method, method_len, req, req_len, waiter, status, 0);
}

NFFI_EXPORT nffi_task *nffi_task_submit_borrowed(nffi_runtime *rt, const char *method,
                                                 size_t method_len, const char *req,
                                                 size_t req_len, uint32_t waiter, int *status)
{
    return nffi__submit(rt, method, method_len, req, req_len, waiter, status, 1);
}

/*
 * Poller wake-ups. Waking a sleeping poller for each submit costs the worker a
 * futex wake and, more often than not, its CPU: the woken poller preempts it
 * (perf at 64 B x 32: pthread_cond_signal and the switch after it were a
 * quarter of the worker's samples). With a kick hook (libnffi_ngx.so posts an
 * nginx event), submits in one turn of the event loop only note the runtime,
 * and nffi_kick_pollers wakes its pollers once, after every coroutine resumed
 * in that turn has submitted. Worker-only state.
 */
static nffi_runtime *nffi__kick_head;
static int nffi__kick_scheduled;
/* The worker's CPU at its last kick, or -1 without a kick hook: pollers spin
 * in flight only from another CPU (nffi__poll_spin_flight). Atomic. */
static int nffi__worker_cpu = -1;

void nffi__wake_pollers(nffi_runtime *rt)
{
    if (nffi__kick_hook == NULL) {
        pthread_cond_signal(&rt->qcond);
        return;
    }
    if (!rt->kick_pending) {
        rt->kick_pending = 1;
        rt->kick_next = nffi__kick_head;
        nffi__kick_head = rt;
    }
    if (!nffi__kick_scheduled) {
        nffi__kick_scheduled = 1;
        nffi__kick_hook();
    }
}

NFFI_EXPORT void nffi_kick_pollers(void)
{
    nffi_runtime *rt = nffi__kick_head;
    nffi__kick_head = NULL;
    nffi__kick_scheduled = 0;
    int cpu_known = 0;
    while (rt != NULL) {
        /* only a runtime whose pollers may spin in flight needs the CPU */
        if (rt->flight_us > 0 && !cpu_known && nffi__kick_hook != NULL) {
            int cpu = sched_getcpu();
            if (NFFI_LOAD(&nffi__worker_cpu) != cpu)
                NFFI_STORE(&nffi__worker_cpu, cpu);
            cpu_known = 1;
        }
        nffi_runtime *next = rt->kick_next;
        rt->kick_next = NULL;
        rt->kick_pending = 0;
        pthread_mutex_lock(&rt->qlock);
        nffi__stage_flush_locked(rt);
        /* a task a spinner will take needs no sleeper; the others do, even
         * while one spins: a spinner that lost its CPU would hold them all
         * until it runs again. One whose heartbeat is older than
         * NFFI__SPIN_BEAT_NS may have lost it: it counts as none. */
        int wake = rt->sleepers > 0 && rt->depth > nffi__spinner(rt);
        pthread_mutex_unlock(&rt->qlock);
        /* one sleeper: it wakes the next while tasks remain (task_poll) */
        if (wake)
            pthread_cond_signal(&rt->qcond);
        rt = next;
    }
}

NFFI_EXPORT void nffi_fast_set_kick(void *hook)
{
    nffi__kick_hook = (void (*)(void))hook;
    if (hook == NULL) {
        nffi_kick_pollers();        /* nothing noted may wait for a turn that never comes */
        NFFI_STORE(&nffi__worker_cpu, -1);
    }
}

NFFI_EXPORT uint64_t nffi_task_id(const nffi_task *t)
{
    return t != NULL ? t->id : 0;
}

NFFI_EXPORT int nffi_task_state(const nffi_task *t)
{
    if (t == NULL)
        return NFFI_EINVAL;
    return t->abandoned ? NFFI_TASK_ABANDONED : __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
}

/* Spinning only pays when the other side runs on another CPU at the same
 * time. A thread pinned to a single CPU (worker_cpu_affinity pins the worker,
 * and the runtime threads it creates inherit the mask) would only steal the
 * time slice of the very thread it waits for, so it never spins. Cached per
 * thread: nginx sets the affinity once, before any Lua runs. */
static int nffi__may_spin(void)
{
    static __thread int cached;         /* 0 unknown, 1 may spin, 2 may not */
    if (cached == 0) {
        cpu_set_t set;
        int cpus = 0;
        if (sched_getaffinity(0, sizeof(set), &set) == 0)
            cpus = CPU_COUNT(&set);
        cached = cpus > 1 ? 1 : 2;
    }
    return cached == 1;
}

/* Bounded busy-wait so a poller that is handed work within spin_us never
 * pays for a futex sleep + wake-up. Every 64 rounds it checks the clock and
 * yields: the worker the response just woke may have been queued on this
 * very CPU (the scheduler often puts a wakee beside its waker), and a spin
 * that does not yield holds it off until the spin ends. Sequential 64 B
 * calls (native/build/wake_cost) at load 2-5 on the 2-vCPU VM: spinning
 * without yielding found the next task in 6 of 862 spins in one run (p50 as
 * never spinning); yielding, p50 7.3-9.7 µs against 12.8-13.1 never spinning,
 * p99 25-35 against 40, CPU per call 8-10 µs against 13.
 * Returns 1 when work (or finish) came, 0 when the time ran out. watch: -1
 * when the CPU was taken away (NFFI__SPIN_GAP_NS): the time a thread sharing
 * this CPU ran during a yield is inside the next gap measured. Each clock
 * check is a heartbeat the kick reads (spin_beat). */
static int nffi__poll_spin(nffi_runtime *rt, int spin_us, int watch)
{
    int64_t last = nffi__now(), deadline = last + (int64_t)spin_us * 1000;
    for (unsigned i = 1;; i++) {
        if (NFFI_LOAD(&rt->depth) > 0 || NFFI_LOAD(&rt->finished))
            /* work that came while this spin was off its CPU is no hit */
            return watch && nffi__now() - last > NFFI__SPIN_GAP_NS ? -1 : 1;
        nffi__cpu_relax();
        if ((i & 63) == 0) {
            int64_t now = nffi__now();
            if (watch && now - last > NFFI__SPIN_GAP_NS)
                return -1;
            if (now >= deadline)
                return 0;
            NFFI_STORE(&rt->spin_beat, now);
            sched_yield();
            last = now;     /* what ran during the yield counts as lost */
        }
    }
}

/* One poller at a time spins (spinning), so that a runtime's other pollers
 * sleep instead of taking a second CPU; after k spins in a row found nothing
 * the next 2^k - 1 chances sleep at once, and after one that lost its CPU
 * (watch) the next 2^NFFI__SPIN_MISS_MAX - 1 do. spinning is cleared before
 * the caller takes qlock: a submit or kick that saw it set and woke nobody is
 * seen by the poller's own check of the queue under qlock. Returns the spin's
 * result (nffi__poll_spin), 0 when it did not spin. */
static int nffi__poll_spin_backoff(nffi_runtime *rt, nffi__backoff *b, int spin_us, int watch)
{
    int idle = 0;
    if (!__atomic_compare_exchange_n(&rt->spinning, &idle, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return 0;
    NFFI_STORE(&rt->spin_beat, nffi__now());
    int r = 0;
    if (b->skip > 0) {
        b->skip--;
    } else if ((r = nffi__poll_spin(rt, spin_us, watch)) > 0) {
        b->miss = 0;
    } else {
        b->miss = r < 0 ? NFFI__SPIN_MISS_MAX : b->miss < NFFI__SPIN_MISS_MAX ? b->miss + 1 : b->miss;
        b->skip = (1 << b->miss) - 1;
    }
    __atomic_store_n(&rt->spinning, 0, __ATOMIC_SEQ_CST);
    return r;
}

/* The spin in flight (NFFI_FLIGHT_SPIN_US, nffi_internal.h): from another CPU
 * than the worker's only, watching for lost time. */
static void nffi__poll_spin_flight(nffi_runtime *rt)
{
    int wcpu = NFFI_LOAD(&nffi__worker_cpu);
    if (wcpu < 0 || sched_getcpu() == wcpu)
        return;
    int r = nffi__poll_spin_backoff(rt, &rt->flight_backoff, rt->flight_us, 1);
    if (r > 0)
        NFFI_STORE(&rt->flight_hits, rt->flight_hits + 1);
    else if (r < 0)
        NFFI_STORE(&rt->flight_lost, rt->flight_lost + 1);
}

NFFI_EXPORT void *ngx_http_lua_ffi_task_poll(void *tq)
{
    nffi_runtime *rt = tq;
    if (rt == NULL)
        return NULL;
    nffi__freeback_take(rt);
    int spin_us = NFFI_LOAD(&rt->spin_us);
    if (spin_us > 0 && NFFI_LOAD(&rt->depth) == 0 && nffi__may_spin()) {
        if (!NFFI_LOAD(&rt->spin_adaptive))
            nffi__poll_spin(rt, spin_us, 0);
        else if (NFFI_LOAD(&rt->live) <= NFFI__SPIN_LIVE_MAX)
            /* the default spin, for calls made one after another: the worker
             * waits in epoll for the response and comes back with the next
             * call; a runtime called now and then spins about once in 64 */
            nffi__poll_spin_backoff(rt, &rt->spin_backoff, spin_us, 0);
        else if (rt->flight_us > 0)
            nffi__poll_spin_flight(rt);
    }

    int slept = 0;
    pthread_mutex_lock(&rt->qlock);
    while (rt->qhead == NULL) {
        /* Finished and empty is terminal: nothing can be queued any more. */
        if (rt->finished) {
            pthread_mutex_unlock(&rt->qlock);
            /* nothing is handed back after finish: this empties it for good */
            nffi__freeback_take(rt);
            return NULL;
        }
        rt->sleepers++;
        pthread_cond_wait(&rt->qcond, &rt->qlock);
        rt->sleepers--;
        slept = 1;
    }
    nffi_task *t = rt->qhead;
    nffi__qunlink(&rt->qhead, &rt->qtail, t);
    NFFI_STORE(&rt->depth, rt->depth - 1);
    /* Under qlock: abandon decides PENDING vs POLLED under the same lock. */
    NFFI_STORE(&t->state, NFFI_TASK_POLLED);
    NFFI_BUMP(&rt->polled, 1);
    /* the next sleeper, for what is left (the kick woke only one) */
    int wake = rt->sleepers > 0 && rt->depth > nffi__spinner(rt);
    pthread_mutex_unlock(&rt->qlock);
    if (wake)
        pthread_cond_signal(&rt->qcond);
    /* what was handed back while this poller slept */
    if (slept)
        nffi__freeback_take(rt);
    if (__atomic_load_n(&t->borrowed, __ATOMIC_RELAXED) != NULL)
        nffi__borrow_copy(t);
    if (NFFI_INST && t->lat_w != 0)
        NFFI_STORE(&t->t_polled, nffi__now());
    return t;
}

NFFI_EXPORT char *ngx_http_lua_ffi_get_req(void *task, int *len)
{
    nffi_task *t = task;
    if (t == NULL) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = t->req_len > INT_MAX ? INT_MAX : (int)t->req_len;
    /* polled: a borrowed request was copied here by the poller */
    return t->req;
}

void *ngx_http_lua_nonblocking_ffi_task_poll(void *tq)
    __attribute__((alias("ngx_http_lua_ffi_task_poll")));
char *ngx_http_lua_nonblocking_ffi_get_req(void *task, int *len)
    __attribute__((alias("ngx_http_lua_ffi_get_req")));

/*
 * The direct-completion handshake. t->direct is IDLE, SPINNING or DONE and
 * both sides only ever CAS it away from SPINNING:
 *   worker:  IDLE -> SPINNING, spin, then SPINNING -> IDLE;
 *   respond: SPINNING -> DONE, else the normal done-list path.
 * Exactly one of the two CASes away from SPINNING wins, so a response is
 * delivered exactly once: either respond won (it skipped the done list and
 * the wake byte, and our failing CAS acquires its writes of rc/rsp) or we
 * won (respond's CAS fails, it takes the normal path and the pump delivers).
 * respond stores state DONE only after its CAS failed, so seeing DONE while
 * spinning means the normal path was taken and further spinning is useless.
 */
NFFI_EXPORT int nffi_task_spin(nffi_task *t, int64_t max_ns)
{
    if (t == NULL || max_ns <= 0 || t->abandoned || nffi__task_staged(t) || !nffi__may_spin())
        return 0;
    int st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
    if (st == NFFI_TASK_DONE || st == NFFI_TASK_READY)
        return 0;
    int expect = NFFI__DIRECT_IDLE;
    if (!__atomic_compare_exchange_n(&t->direct, &expect, NFFI__DIRECT_SPINNING, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    int64_t deadline = nffi_now_ns() + max_ns;
    for (unsigned i = 1;; i++) {
        if (__atomic_load_n(&t->direct, __ATOMIC_ACQUIRE) == NFFI__DIRECT_DONE ||
            __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) == NFFI_TASK_DONE)
            break;
        nffi__cpu_relax();
        if ((i & 15) == 0 && nffi_now_ns() >= deadline)
            break;
    }
    expect = NFFI__DIRECT_SPINNING;
    if (__atomic_compare_exchange_n(&t->direct, &expect, NFFI__DIRECT_IDLE, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    /* respond claimed the direct path; it never touches the task again. */
    __atomic_store_n(&t->direct, NFFI__DIRECT_IDLE, __ATOMIC_RELAXED);
    __atomic_store_n(&t->state, NFFI_TASK_READY, __ATOMIC_RELAXED);
    return 1;
}

NFFI_EXPORT int nffi_task_result(nffi_task *t, char **rsp, size_t *rsp_len)
{
    if (t == NULL || t->abandoned ||
        __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != NFFI_TASK_READY) {
        if (rsp != NULL)
            *rsp = NULL;
        if (rsp_len != NULL)
            *rsp_len = 0;
        return NFFI_EINVAL;
    }
    if (NFFI_INST_RT(t->rt) && !t->resumed) {
        nffi_runtime *rt = t->rt;
        uint64_t w = t->lat_w;
        if (w != 0) {
            t->t_resumed = nffi__now();
            nffi__hist_add(&rt->hist[NFFI_LAT_QUEUE], t->t_polled - t->t_enqueued, w);
            nffi__hist_add(&rt->hist[NFFI_LAT_SERVICE], t->t_responded - t->t_polled, w);
            nffi__hist_add(&rt->hist[NFFI_LAT_WAKEUP], t->t_resumed - t->t_responded, w);
            nffi__hist_add(&rt->hist[NFFI_LAT_TOTAL], t->t_resumed - t->t_enqueued, w);
            NFFI_BUMP(&rt->lat_samples, 1);
        }
        NFFI_BUMP(&rt->resumed, 1);
    }
    t->resumed = 1;
    if (rsp != NULL)
        *rsp = t->rsp;
    if (rsp_len != NULL)
        *rsp_len = t->rsp_len;
    return t->rc;
}

NFFI_EXPORT int nffi_task_abandon(nffi_task *t)
{
    if (t == NULL)
        return 0;
    nffi_runtime *rt = t->rt;
    if (NFFI_INST_RT(rt))
        NFFI_BUMP(&rt->timeouts, 1);
    /* Its waiter is gone: nothing may post the semaphore any more. */
    nffi__sema_forget(t);
    if (nffi__task_staged(t)) {
        nffi__qunlink(&rt->stage_head, &rt->stage_tail, t);
        NFFI_STORE(&rt->staged, rt->staged - 1);
        nffi__task_free(t);
        return 1;
    }
    /* Only the worker sets READY, so this read is stable. */
    int st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
    if (st == NFFI_TASK_READY) {
        nffi__task_free(t);
        return 1;
    }
    if (st == NFFI_TASK_PENDING) {
        /* Decide under qlock: poll moves PENDING -> POLLED only while holding it. */
        pthread_mutex_lock(&rt->qlock);
        if (NFFI_LOAD(&t->state) == NFFI_TASK_PENDING) {
            nffi__qunlink(&rt->qhead, &rt->qtail, t);
            NFFI_STORE(&rt->depth, rt->depth - 1);
            pthread_mutex_unlock(&rt->qlock);
            nffi__task_free(t);
            return 1;
        }
        pthread_mutex_unlock(&rt->qlock);
    }
    /* POLLED or DONE: a runtime thread or the done list still references it.
     * It reaches nffi_drain eventually, which frees it instead of returning it. */
    t->abandoned = 1;
    return 0;
}

NFFI_EXPORT void nffi_task_release(nffi_task *t)
{
    if (t == NULL)
        return;
    /* Releasing a task that is not READY would free memory a runtime thread or
     * the done list still uses; treat it as an abandon instead. */
    if (t->abandoned || __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != NFFI_TASK_READY) {
        if (!t->abandoned)
            nffi_task_abandon(t);
        return;
    }
    nffi__task_free(t);
}
