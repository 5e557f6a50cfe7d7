/* Runtimes: creation, finish, statistics and the live-task snapshot. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nffi_internal.h"

/*
 * glibc gives memory back to the kernel whenever the top of a heap grows past
 * M_TRIM_THRESHOLD (128 KiB) after a free of 64 KiB or more. Responses are
 * malloc'd in the runtime thread's arena and freed by the worker; with 32
 * calls of 64 KiB in flight every free trimmed that arena (madvise) and the
 * runtime's next malloc took 16 page faults again: measured as most of the
 * runtime thread's time at 64 KiB x 32 (perf: exc_page_fault under memmove,
 * __madvise in the worker). A worker that runs nffi keeps 8 MiB of each heap's
 * top instead; NFFI_MALLOC_TRIM=<bytes> sets another value, 0 keeps glibc's.
 */
static void nffi__malloc_tune(void)
{
    long bytes = 8L << 20;
    const char *env = getenv("NFFI_MALLOC_TRIM");
    if (env != NULL)
        bytes = strtol(env, NULL, 10);
    if (bytes > 0)
        mallopt(M_TRIM_THRESHOLD, (int)(bytes > (1L << 30) ? (1L << 30) : bytes));
}

NFFI_EXPORT const char *nffi_version(void)
{
    return "0.1.0";
}

NFFI_EXPORT int nffi_instrumented(void)
{
    return NFFI_INST;
}

NFFI_EXPORT int64_t nffi_now_ns(void)
{
    return nffi__now();
}

NFFI_EXPORT int64_t nffi_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int nffi__clamp(long v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : (int)v;
}

/* A knob from the worker's environment: 1 and *out (clamped) when it is set. */
static int nffi__env_int(const char *name, int lo, int hi, int *out)
{
    const char *v = getenv(name);
    if (v == NULL)
        return 0;
    *out = nffi__clamp(strtol(v, NULL, 10), lo, hi);
    return 1;
}

NFFI_EXPORT nffi_runtime *nffi_runtime_new(const char *name, int max_queue)
{
    static pthread_once_t tuned = PTHREAD_ONCE_INIT;
    pthread_once(&tuned, nffi__malloc_tune);
    /* 64-byte aligned: the runtime threads' counters have a cache line of their own */
    nffi_runtime *rt = NULL;
    if (posix_memalign((void **)&rt, 64, sizeof(*rt)) != 0)
        return NULL;
    memset(rt, 0, sizeof(*rt));
    rt->name = strdup(name ? name : "");
    if (rt->name == NULL || pthread_mutex_init(&rt->qlock, NULL) != 0) {
        free(rt->name);
        free(rt);
        return NULL;
    }
    if (pthread_cond_init(&rt->qcond, NULL) != 0) {
        pthread_mutex_destroy(&rt->qlock);
        free(rt->name);
        free(rt);
        return NULL;
    }
    rt->max_queue = max_queue > 0 ? max_queue : 65536;
    rt->spin_us = NFFI__SPIN_DEFAULT_US;
    rt->spin_adaptive = 1;
    rt->inst = 1;
    rt->lat_every = NFFI__LAT_EVERY_DEFAULT;
    nffi__env_int("NFFI_LAT_SAMPLE", 1, 65536, &rt->lat_every);
    /* any nonzero seed; the runtime's address differs between runtimes */
    rt->lat_rng = (uint32_t)((uintptr_t)rt >> 6) | 1;
    nffi__env_int("NFFI_FLIGHT_SPIN_US", 0, 1000, &rt->flight_us);
    if (nffi__env_int("NFFI_POLL_SPIN_US", 0, 1000000, &rt->spin_us))
        rt->spin_adaptive = 0;
    return rt;
}

NFFI_EXPORT int nffi_runtime_finish(nffi_runtime *rt)
{
    if (rt == NULL)
        return NFFI_EINVAL;
    /* what was submitted before finish is still served */
    nffi__stage_flush(rt);
    pthread_mutex_lock(&rt->qlock);
    __atomic_store_n(&rt->finished, 1, __ATOMIC_RELEASE);
    /* Every sleeper must wake: each one returns NULL once the queue is empty. */
    pthread_cond_broadcast(&rt->qcond);
    pthread_mutex_unlock(&rt->qlock);
    return NFFI_OK;
}

NFFI_EXPORT int nffi_runtime_finished(const nffi_runtime *rt)
{
    return rt != NULL && __atomic_load_n(&rt->finished, __ATOMIC_ACQUIRE);
}

NFFI_EXPORT void nffi_runtime_set_poll_spin(nffi_runtime *rt, int spin_us)
{
    if (rt != NULL) {
        NFFI_STORE(&rt->spin_adaptive, 0);
        NFFI_STORE(&rt->spin_us, nffi__clamp(spin_us, 0, 1000000));
    }
}

NFFI_EXPORT void nffi_runtime_set_lat_sample(nffi_runtime *rt, int every)
{
    if (rt != NULL)
        NFFI_STORE(&rt->lat_every, nffi__clamp(every, 1, 65536));
}

NFFI_EXPORT int nffi_runtime_set_instrumented(nffi_runtime *rt, int on)
{
    if (rt == NULL)
        return NFFI_EINVAL;
    int want = on != 0;
    if (rt->inst == want)
        return NFFI_OK;
    /* only while no task of rt is live (staged, queued, held, resumed and
     * not released, or abandoned and not yet drained): every task is then
     * stamped and counted from submit to free by one setting: no counter
     * counts part of a task's life (its submit but not its end, say) */
    if (rt->live != 0)
        return NFFI_EINVAL;
    rt->inst = want;
    return NFFI_OK;
}

NFFI_EXPORT void nffi_runtime_stats(const nffi_runtime *rt, nffi_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (rt == NULL)
        return;
    out->enqueued = NFFI_LOAD(&rt->enqueued);
    /* responded before polled: every response counted was polled first, so
     * in_flight never reads negative (it may count a task polled meanwhile). */
    out->responded = __atomic_load_n(&rt->responded, __ATOMIC_ACQUIRE) +
                     __atomic_load_n(&rt->responded_direct, __ATOMIC_ACQUIRE);
    out->polled = __atomic_load_n(&rt->polled, __ATOMIC_ACQUIRE);
    out->in_flight = out->polled > out->responded ? (int64_t)(out->polled - out->responded) : 0;
    out->resumed = NFFI_LOAD(&rt->resumed);
    out->timeouts = NFFI_LOAD(&rt->timeouts);
    out->rejected = NFFI_LOAD(&rt->rejected);
    out->late = NFFI_LOAD(&rt->late);
    out->depth = NFFI_LOAD(&rt->depth) + NFFI_LOAD(&rt->staged);
    out->live = NFFI_LOAD(&rt->live);
    out->lat_samples = NFFI_LOAD(&rt->lat_samples);
    out->lat_sample_every = NFFI_INST_RT(rt) ? NFFI_LOAD(&rt->lat_every) : 0;
    out->spins_in_flight = NFFI_LOAD(&rt->flight_hits);
    out->spins_lost = NFFI_LOAD(&rt->flight_lost);
    for (int k = 0; k < 4; k++) {
        out->lat_count[k] = NFFI_LOAD(&rt->hist[k].count);
        out->lat_sum_ns[k] = NFFI_LOAD(&rt->hist[k].sum);
        out->lat_max_ns[k] = NFFI_LOAD(&rt->hist[k].max);
    }
}

NFFI_EXPORT double nffi_runtime_quantile(const nffi_runtime *rt, int lat_kind, double q)
{
    if (rt == NULL || lat_kind < 0 || lat_kind > 3)
        return 0;
    return nffi__hist_quantile(&rt->hist[lat_kind], q);
}

void nffi__info(const nffi_task *t, nffi_task_info *o)
{
    memset(o, 0, sizeof(*o));
    o->id = t->id;
    o->runtime = t->rt;
    /* state, rc and the runtime-side stamps are written by runtime threads. */
    o->state = t->abandoned ? NFFI_TASK_ABANDONED : NFFI_LOAD(&t->state);
    o->rc = NFFI_LOAD(&t->rc);
    o->t_enqueued = t->t_enqueued;
    o->t_polled = NFFI_LOAD(&t->t_polled);
    o->t_responded = NFFI_LOAD(&t->t_responded);
    o->t_resumed = t->t_resumed;
    o->req_len = t->req_len;
    o->waiter = t->waiter;
    memcpy(o->method, t->method, sizeof(o->method));
    if (NFFI_INST) {
        size_t n = t->req_len < sizeof(o->preview) ? t->req_len : sizeof(o->preview);
        memcpy(o->preview, nffi__task_req(t), n);
        o->preview_len = (uint32_t)n;
    }
}

NFFI_EXPORT int nffi_task_get_info(const nffi_task *t, nffi_task_info *out)
{
    if (t == NULL || out == NULL)
        return NFFI_EINVAL;
    nffi__info(t, out);
    return NFFI_OK;
}

NFFI_EXPORT int nffi_runtime_tasks(const nffi_runtime *rt, uint64_t after_id,
                                   nffi_task_info *out, int max)
{
    if (rt == NULL || out == NULL || max <= 0 || rt->live_tail == NULL)
        return 0;
    if (after_id >= rt->live_tail->id)
        return 0;
    /* The list is in id order. Start from whichever end is nearer (by id) so
     * that paging near the tail does not rescan the whole list every call. */
    const nffi_task *t;
    if (after_id < rt->live_head->id ||
        after_id - rt->live_head->id < rt->live_tail->id - after_id) {
        for (t = rt->live_head; t->id <= after_id; t = t->lnext)
            ;
    } else {
        for (t = rt->live_tail; t->lprev != NULL && t->lprev->id > after_id; t = t->lprev)
            ;
    }
    int n = 0;
    for (; t != NULL && n < max; t = t->lnext)
        nffi__info(t, &out[n++]);
    return n;
}

/* The first live task with id > after_id, from a hint when one is near (a page
 * left partly read, or tasks freed around it); *slot says which hint, or -1. */
#define NFFI__HINT_SLACK 64

static nffi_task *nffi__from_hint(nffi_task *h, uint64_t after_id)
{
    for (int k = 0; h->id > after_id; k++) {
        if (h->gprev == NULL)
            return h;
        if (k == NFFI__HINT_SLACK)
            return NULL;
        h = h->gprev;
    }
    for (int k = 0; h != NULL && h->id <= after_id; k++) {
        if (k == NFFI__HINT_SLACK)
            return NULL;
        h = h->gnext;
    }
    return h;
}

static nffi_task *nffi__first_after(uint64_t after_id, int *slot)
{
    nffi__registry *g = &nffi__live;
    *slot = -1;
    if (g->tail == NULL || after_id >= g->tail->id)
        return NULL;
    if (after_id < g->head->id)
        return g->head;
    for (int i = 0; i < NFFI__HINTS; i++) {
        nffi_task *t = g->hint[i] != NULL ? nffi__from_hint(g->hint[i], after_id) : NULL;
        if (t != NULL) {
            *slot = i;
            return t;
        }
    }
    /* No hint near: from the nearer end, by id. */
    nffi_task *t;
    if (after_id - g->head->id < g->tail->id - after_id) {
        for (t = g->head; t->id <= after_id; t = t->gnext)
            ;
    } else {
        for (t = g->tail; t->gprev != NULL && t->gprev->id > after_id; t = t->gprev)
            ;
    }
    return t;
}

static void nffi__remember(int slot, nffi_task *last)
{
    nffi__registry *g = &nffi__live;
    if (slot < 0)
        slot = (int)(g->hint_next++ % NFFI__HINTS);
    g->hint[slot] = last;
}

NFFI_EXPORT int nffi_tasks(uint64_t after_id, nffi_task_info *out, int max)
{
    if (out == NULL || max <= 0)
        return 0;
    int slot;
    nffi_task *t = nffi__first_after(after_id, &slot), *last = NULL;
    int n = 0;
    for (; t != NULL && n < max; t = t->gnext) {
        nffi__info(t, &out[n++]);
        last = t;
    }
    if (last != NULL)
        nffi__remember(slot, last);
    return n;
}

NFFI_EXPORT int64_t nffi_tasks_count(uint64_t after_id, int64_t enq_before_ns, int max_visit,
                                     uint64_t *next_after)
{
    if (next_after != NULL)
        *next_after = 0;
    if (after_id == 0 && enq_before_ns == 0)
        return nffi__live.count;
    if (max_visit <= 0)
        return NFFI_EINVAL;
    int slot;
    nffi_task *t = nffi__first_after(after_id, &slot), *last = NULL;
    int64_t n = 0;
    for (int k = 0; t != NULL; t = t->gnext, k++) {
        if (k == max_visit) {
            if (next_after != NULL)
                *next_after = last->id;
            break;
        }
        if (enq_before_ns != 0 && t->t_enqueued > enq_before_ns)
            break;
        if (enq_before_ns == 0 || t->t_enqueued != 0)
            n++;
        last = t;
    }
    if (last != NULL)
        nffi__remember(slot, last);
    return n;
}

/* RTLD_NOLOAD finds the copy ffi.load opened; RTLD_NODELETE makes its later
 * dlclose (lua_close at worker exit finalizes every clib) leave it mapped. The
 * handle is never closed: the reference is the point. */
int nffi_pin_library(const char *path)
{
    if (!path)
        return -1;
    return dlopen(path, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) ? 0 : -1;
}
