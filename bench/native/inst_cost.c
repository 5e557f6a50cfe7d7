/*
 * What libnffi's instrumentation costs per task, side by side in one process:
 * build/libnffi.so and build/libnffi_noinst.so are both dlopen'ed (RTLD_LOCAL,
 * each with its own state) and driven alike, interleaved over the repeats so
 * that the shared machine's drift hits both.
 *
 *   inline: one thread does submit, poll, respond, drain, result, release:
 *           the path length of a task, CPU ns per task, with no waiting and
 *           no wake-up in it (those cost microseconds and the same in both
 *           builds: they would bury the difference in the shared VM's noise);
 *           x1 one task at a time, x32 32 live at once
 *           (latencies sampled, as at 32 light threads); a third runtime, of
 *           the instrumented build but opted out (nffi.load's opts.instrument
 *           = false), shows what bench/ffi-instrumentation.ts's in-worker
 *           comparison leaves out;
 * and the pieces instrumentation can be made of, each in a loop of its own:
 * a CLOCK_MONOTONIC read and its alternatives, an atomic add on a line of
 * this thread's and on a line another thread adds to.
 *
 * Usage: inst_cost BUILD_DIR [tasks=200000] [repeats=7]
 * Prints one line per measure; exits 1 if a library is missing, is not the
 * variant its name says, or a task did not come back byte-exact with its
 * latencies recorded (then nothing it printed measured a task).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif
#include "nffi.h"

typedef struct lib {
    const char *name;
    void *h;
    nffi_runtime *(*runtime_new)(const char *, int);
    int (*runtime_finish)(nffi_runtime *);
    nffi_task *(*submit)(nffi_runtime *, const char *, size_t, const char *, size_t, uint32_t, int *);
    int (*drain)(nffi_task **, int);
    int (*result)(nffi_task *, char **, size_t *);
    void (*release)(nffi_task *);
    void *(*poll)(void *);
    char *(*get_req)(void *, int *);
    void (*respond)(void *, int, char *, int);
    int (*instrumented)(void);
    void (*stats)(const nffi_runtime *, nffi_stats *);
    void (*set_kick)(void *);
    void (*kick)(void);
    int (*set_instrumented)(nffi_runtime *, int);
} lib;

/* The event loop's kick: the batch's submits wait on the stage until it runs. */
static void no_kick(void)
{
}

static void *sym(lib *l, const char *name)
{
    void *p = dlsym(l->h, name);
    if (p == NULL) {
        fprintf(stderr, "inst_cost: %s has no %s\n", l->name, name);
        exit(1);
    }
    return p;
}

static void lib_open(lib *l, const char *dir, const char *file)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    l->name = file;
    l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (l->h == NULL) {
        fprintf(stderr, "inst_cost: %s\n", dlerror());
        exit(1);
    }
    l->runtime_new = sym(l, "nffi_runtime_new");
    l->runtime_finish = sym(l, "nffi_runtime_finish");
    l->submit = sym(l, "nffi_task_submit");
    l->drain = sym(l, "nffi_drain");
    l->result = sym(l, "nffi_task_result");
    l->release = sym(l, "nffi_task_release");
    l->poll = sym(l, "ngx_http_lua_ffi_task_poll");
    l->set_kick = sym(l, "nffi_fast_set_kick");
    l->kick = sym(l, "nffi_kick_pollers");
    l->set_instrumented = sym(l, "nffi_runtime_set_instrumented");
    l->get_req = sym(l, "ngx_http_lua_ffi_get_req");
    l->respond = sym(l, "ngx_http_lua_ffi_respond");
    l->instrumented = sym(l, "nffi_instrumented");
    l->stats = sym(l, "nffi_runtime_stats");
}

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char payload[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

static void check_echo(lib *l, nffi_task *t)
{
    char *rsp;
    size_t len;
    int rc = l->result(t, &rsp, &len);
    if (rc != 0 || len != sizeof(payload) || memcmp(rsp, payload, len) != 0) {
        fprintf(stderr, "inst_cost: %s: a task came back wrong (rc %d, %zu bytes)\n", l->name, rc, len);
        exit(1);
    }
    l->release(t);
}

static void echo_one(lib *l, void *task)
{
    int len = 0;
    char *req = l->get_req(task, &len);
    char *rsp = malloc((size_t)len + 1);
    memcpy(rsp, req, (size_t)len + 1);
    l->respond(task, 0, rsp, len);
}

/* ns per task, everything on this thread: batch tasks submitted, then
 * polled and answered, drained, their results taken. batch 1 is the
 * sequential call; 32 is 32 light threads' worth live at
 * once, where the latencies are sampled (nffi_internal.h). */
#define BATCH_MAX 64

static double run_inline(lib *l, nffi_runtime *rt, long tasks, int batch)
{
    /* this runtime's tasks: the build's, unless it opted out */
    nffi_stats s00;
    l->stats(rt, &s00);
    int inst = l->instrumented() && s00.lat_sample_every != 0;
    nffi_task *t[BATCH_MAX], *out[BATCH_MAX];
    nffi_stats s0;
    l->stats(rt, &s0);
    /* as on the eventfd path: a batch's submits are queued at the turn's kick */
    l->set_kick(batch > 1 ? (void *)no_kick : NULL);
    int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < tasks; i += batch) {
        int st;
        for (int b = 0; b < batch; b++) {
            t[b] = l->submit(rt, "echo", 4, payload, sizeof(payload), 1, &st);
            if (t[b] == NULL) {
                fprintf(stderr, "inst_cost: %s: submit failed (%d)\n", l->name, st);
                exit(1);
            }
        }
        if (batch > 1)
            l->kick();
        for (int b = 0; b < batch; b++) {
            void *p = l->poll(rt);
            if (p != t[b]) {
                fprintf(stderr, "inst_cost: %s: poll did not return the task\n", l->name);
                exit(1);
            }
            echo_one(l, p);
        }
        if (l->drain(out, batch) != batch) {
            fprintf(stderr, "inst_cost: %s: drain did not return the tasks\n", l->name);
            exit(1);
        }
        for (int b = 0; b < batch; b++)
            check_echo(l, out[b]);
    }
    double ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)tasks;
    l->set_kick(NULL);
    nffi_stats s;
    l->stats(rt, &s);
    uint64_t done = s.resumed - s0.resumed, counted = s.lat_count[NFFI_LAT_TOTAL] - s0.lat_count[NFFI_LAT_TOTAL];
    /* sampled (a task a millisecond, 1 in `every` of the rest, each standing
     * for `every`), the weighted count estimates the tasks: within 6 sigma
     * of the draws, every * sqrt(done / every) a sigma */
    uint64_t every = s.lat_sample_every > 0 ? (uint64_t)s.lat_sample_every : 1, r = 1;
    while (r * r < done / every)
        r++;
    uint64_t tol = 6 * every * r + every;
    if (s.live != 0 || s.in_flight != 0 || s.polled != s.responded ||
        (inst && (counted + tol < done || counted > done + tol)) ||
        (!inst && (done != 0 || counted != 0))) {
        fprintf(stderr, "inst_cost: %s: stats do not add up (live %lld, in flight %lld, %llu done, %llu counted)\n",
                l->name, (long long)s.live, (long long)s.in_flight, (unsigned long long)done,
                (unsigned long long)counted);
        exit(1);
    }
    return ns;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double range(const char *what, double *v, int n, const char *unit)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("%-44s median %8.1f  min %8.1f  max %8.1f %s\n", what, v[n / 2], v[0], v[n - 1], unit);
    return v[n / 2];
}

/* The pieces, alone: ns per operation */
static volatile int64_t sink;
static uint64_t shared_counter __attribute__((aligned(64)));
static volatile int hammer_stop;

static void *hammer(void *arg)
{
    (void)arg;
    while (!hammer_stop)
        __atomic_fetch_add(&shared_counter, 1, __ATOMIC_RELAXED);
    return NULL;
}

static double per_op_clock(clockid_t c, long n)
{
    int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < n; i++)
        sink += clock_ns(c);
    return (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)n;
}

/* returns the median ns of one CLOCK_MONOTONIC read */
static double pieces(int repeats)
{
    const long n = 2000000;
    double v[64];
    struct { const char *name; clockid_t c; } clocks[] = {
        {"piece: clock_gettime(CLOCK_MONOTONIC)", CLOCK_MONOTONIC},
        {"piece: clock_gettime(CLOCK_MONOTONIC_COARSE)", CLOCK_MONOTONIC_COARSE},
    };
    double mono = 0;
    for (size_t k = 0; k < sizeof(clocks) / sizeof(clocks[0]); k++) {
        for (int r = 0; r < repeats; r++)
            v[r] = per_op_clock(clocks[k].c, n);
        double m = range(clocks[k].name, v, repeats, "ns");
        if (k == 0)
            mono = m;
    }
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    printf("%-44s %ld ns\n", "  (CLOCK_MONOTONIC_COARSE resolution)", res.tv_nsec);
#if defined(__x86_64__)
    for (int r = 0; r < repeats; r++) {
        int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < n; i++)
            sink += (int64_t)__rdtsc();
        v[r] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)n;
    }
    range("piece: rdtsc", v, repeats, "ns");
#endif
    for (int r = 0; r < repeats; r++) {
        int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < n; i++)
            __atomic_fetch_add(&shared_counter, 1, __ATOMIC_RELAXED);
        v[r] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)n;
    }
    range("piece: atomic add, line not shared", v, repeats, "ns");
    for (int r = 0; r < repeats; r++) {
        pthread_t th;
        hammer_stop = 0;
        pthread_create(&th, NULL, hammer, NULL);
        int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < n / 4; i++)
            __atomic_fetch_add(&shared_counter, 1, __ATOMIC_RELAXED);
        v[r] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)(n / 4);
        hammer_stop = 1;
        pthread_join(th, NULL);
    }
    range("piece: atomic add, line another thread adds to", v, repeats, "ns");
    return mono;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: inst_cost BUILD_DIR [tasks] [repeats]\n");
        return 2;
    }
    long tasks = argc > 2 ? atol(argv[2]) : 200000;
    int repeats = argc > 3 ? atoi(argv[3]) : 7;
    if (tasks < 1000 || repeats < 1 || repeats > 64) {
        fprintf(stderr, "inst_cost: tasks >= 1000, repeats 1..64\n");
        return 2;
    }
    lib li, ln;
    lib_open(&li, argv[1], "libnffi.so");
    lib_open(&ln, argv[1], "libnffi_noinst.so");
    if (!li.instrumented() || ln.instrumented()) {
        fprintf(stderr, "inst_cost: libnffi.so must be instrumented and libnffi_noinst.so not\n");
        return 1;
    }
    nffi_runtime *rti = li.runtime_new("inline", 0), *rtn = ln.runtime_new("inline", 0);
    /* the instrumented build, this runtime opted out (nffi.load's opts.instrument = false) */
    nffi_runtime *rto = li.runtime_new("opted-out", 0);
    if (li.set_instrumented(rto, 0) != NFFI_OK) {
        fprintf(stderr, "inst_cost: a new runtime could not opt out of instrumentation\n");
        return 1;
    }
    printf("inst_cost: %ld tasks of %zu bytes a repeat, %d repeats, CPU time of this thread\n",
           tasks, sizeof(payload), repeats);
    double cost = 0;
    static const int batches[] = {1, 32};
    for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
        int batch = batches[k];
        long n = tasks / batch * batch;
        run_inline(&li, rti, n / 10 / batch * batch + batch, batch);   /* warm: freelists, caches */
        run_inline(&ln, rtn, n / 10 / batch * batch + batch, batch);
        run_inline(&li, rto, n / 10 / batch * batch + batch, batch);
        double ii[64], in[64], id[64], io[64], od[64];
        for (int r = 0; r < repeats; r++) {
            /* alternate which goes first: a drift within a repeat hits both alike */
            if (r & 1) {
                in[r] = run_inline(&ln, rtn, n, batch);
                io[r] = run_inline(&li, rto, n, batch);
                ii[r] = run_inline(&li, rti, n, batch);
            } else {
                ii[r] = run_inline(&li, rti, n, batch);
                io[r] = run_inline(&li, rto, n, batch);
                in[r] = run_inline(&ln, rtn, n, batch);
            }
            id[r] = ii[r] - in[r];
            od[r] = io[r] - in[r];
        }
        char what[64];
        snprintf(what, sizeof(what), "inline x%d: ns/task, instrumented", batch);
        range(what, ii, repeats, "ns");
        snprintf(what, sizeof(what), "inline x%d: ns/task, noinst", batch);
        range(what, in, repeats, "ns");
        snprintf(what, sizeof(what), "inline x%d: instrumentation (paired)", batch);
        double c = range(what, id, repeats, "ns");
        /* what the bench's in-worker comparison leaves out: the opted-out
         * runtime's own checks against the build without any */
        snprintf(what, sizeof(what), "inline x%d: ns/task, runtime opted out", batch);
        range(what, io, repeats, "ns");
        snprintf(what, sizeof(what), "inline x%d: opted out - noinst (paired)", batch);
        range(what, od, repeats, "ns");
        if (batch == 1)
            cost = c;
    }
    nffi_stats st;
    li.stats(rti, &st);
    printf("%-44s 1 in %lld beyond one task a millisecond\n", "latency sampling", (long long)st.lat_sample_every);
    double clock = pieces(repeats);
    /* a stamped task has 4: enqueued, polled, responded, resumed; at this
     * loop's rate 1 in 64 is stamped, and one a millisecond */
    printf("%-44s %8.1f ns (instrumentation at x1: %.1f)\n", "a stamped task's 4 stamps (4 x clock read)", 4 * clock, cost);
    return 0;
}
