/* libnffi tests. Usage: test_nffi [examples_dir]. The main thread plays the
 * nginx worker; test threads (and the example runtimes) play runtime threads. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "nffi.h"
#include "nffi_inspect.h"
#include "nffi_internal.h"
#include "check.h"

int passed, failed;

static const char *examples_dir = "build/examples";
#define SEC 1000000000LL
#define INST (nffi_instrumented() != 0)

/* ---------- helpers ---------- */

/* Runtimes are never freed (by contract); keep them reachable for LSan. */
static nffi_runtime *all_runtimes[64];
static int n_runtimes;

static nffi_runtime *new_rt(const char *name, int max_queue)
{
    nffi_runtime *rt = nffi_runtime_new(name, max_queue);
    if (rt != NULL && n_runtimes < 64)
        all_runtimes[n_runtimes++] = rt;
    return rt;
}

/* Drains until `want` tasks were handed out or the timeout expires. */
static int drain_wait(nffi_task **got, int want, int64_t timeout_ns)
{
    int n = 0;
    int64_t deadline = nffi_now_ns() + timeout_ns;
    while (n < want) {
        int k = nffi_drain(got + n, want - n);
        n += k;
        if (k == 0) {
            if (nffi_now_ns() > deadline)
                break;
            usleep(50);
        }
    }
    return n;
}

struct rthread {
    nffi_runtime *rt;
    int jitter;
    int served;
    pthread_t th;
};

/* Echo runtime thread; rc = request length % 5 so rc travels too. */
static void *test_echo(void *arg)
{
    struct rthread *r = arg;
    unsigned seed = (unsigned)(uintptr_t)r;
    void *task;
    while ((task = ngx_http_lua_ffi_task_poll(r->rt)) != NULL) {
        int len = -1;
        char *req = ngx_http_lua_ffi_get_req(task, &len);
        if (r->jitter == 1 && rand_r(&seed) % 8 == 0)
            usleep(rand_r(&seed) % 30);
        if (r->jitter == 2) {                   /* respond 0-30 us later, busily */
            int64_t until = nffi_now_ns() + rand_r(&seed) % 30000;
            while (nffi_now_ns() < until)
                ;
        }
        char *rsp = malloc((size_t)len + 1);
        memcpy(rsp, req, (size_t)len);
        rsp[len] = '\0';
        ngx_http_lua_ffi_respond(task, len % 5, rsp, len);
        r->served++;
    }
    return NULL;
}

static void start_threads(struct rthread *th, int n, nffi_runtime *rt, int jitter)
{
    for (int i = 0; i < n; i++) {
        th[i].rt = rt;
        th[i].jitter = jitter;
        th[i].served = 0;
        pthread_create(&th[i].th, NULL, test_echo, &th[i]);
    }
}

static int join_threads(struct rthread *th, int n)
{
    int served = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i].th, NULL);
        served += th[i].served;
    }
    return served;
}

static nffi_stats stats_of(nffi_runtime *rt)
{
    nffi_stats s;
    nffi_runtime_stats(rt, &s);
    return s;
}

static char *random_bytes(size_t n, unsigned *seed)
{
    char *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(rand_r(seed) % 4 == 0 ? 0 : rand_r(seed));
    return p;
}

/* ---------- tests ---------- */

void test_borrow(void);    /* test_borrow.c */

static void test_basics(void)
{
    CHECK(strcmp(nffi_version(), "0.1.0") == 0);
    int64_t a = nffi_now_ns(), b = nffi_now_ns();
    CHECK(a > 0 && b >= a);
    int st = 0;
    CHECK(nffi_task_submit(NULL, "", 0, "x", 1, 0, &st) == NULL && st == NFFI_EINVAL);
    setenv("NFFI_POLL_SPIN_US", "50", 1);
    nffi_runtime *rt = new_rt("env", -5);
    unsetenv("NFFI_POLL_SPIN_US");
    CHECK(rt->spin_us == 50 && rt->max_queue == 65536);
    nffi_runtime_set_poll_spin(rt, 0);
    CHECK(rt->spin_us == 0);
    CHECK(nffi_runtime_quantile(rt, NFFI_LAT_TOTAL, 0.5) == 0);
    CHECK(nffi_runtime_finished(rt) == 0);
    /* Small tasks are recycled: the hot path reuses memory instead of malloc. */
    nffi_task *t = nffi_task_submit(rt, "", 0, "x", 1, 0, &st);
    CHECK(ngx_http_lua_ffi_task_poll(rt) == t);
    ngx_http_lua_ffi_respond(t, 0, NULL, 0);
    nffi_task *got;
    CHECK(nffi_drain(&got, 1) == 1 && got == t);
    nffi_task_release(t);
    CHECK(nffi_task_submit(rt, "", 0, "y", 1, 0, &st) == t && nffi_task_abandon(t) == 1);
    int len = -1;
    t = nffi_task_submit(rt, NULL, 0, NULL, 0, 0, &st);
    CHECK(t != NULL && strcmp(ngx_http_lua_ffi_get_req(t, &len), "") == 0 && len == 0);
    CHECK(ngx_http_lua_ffi_get_req(t, NULL) != NULL && nffi_task_abandon(t) == 1);
    CHECK(nffi_runtime_finish(rt) == 0 && nffi_runtime_finish(rt) == 0);
    CHECK(nffi_runtime_finished(rt) == 1);
    /* no lua module in this process: the request helpers refuse, never call NULL */
    const char *m = "x", *u = "x";
    size_t ml = 1, ul = 1;
    CHECK(nffi_request_available() == 0 && nffi_co_exdata(&st) == NULL);
    CHECK(nffi_co_request(&st, &m, &ml, &u, &ul) == NFFI_EINVAL);
    CHECK(m == NULL && ml == 0 && u == NULL && ul == 0);
}

/* every: the latency sampling (0: the default, 64, and N tasks submitted in a
 * few ms: sampled); all: nffi_latency_all, every task stamped whatever the
 * sampling. */
static void roundtrip(int every, int all)
{
    enum { N = 3000, NT = 4 };
    nffi_runtime *rt = new_rt("roundtrip", 0);
    if (every > 0)
        nffi_runtime_set_lat_sample(rt, every);
    nffi_latency_all(all);
    struct rthread th[NT];
    start_threads(th, NT, rt, 1);

    unsigned seed = 42;
    static char *req[N];
    static size_t len[N];
    static nffi_task *tasks[N], *got[N];
    for (int i = 0; i < N; i++) {
        len[i] = i == 0 ? 0 : i == 1 ? (16u << 20) + 3 : i % 100 == 0 ? 4096 + (size_t)i * 7
                                                                       : (size_t)rand_r(&seed) % 300;
        req[i] = random_bytes(len[i], &seed);
    }
    uint64_t first = 0;
    int ok = 1;
    for (int i = 0; i < N; i++) {
        int st = 1;
        tasks[i] = nffi_task_submit(rt, "POST", 4, req[i], len[i], (uint32_t)i, &st);
        ok &= tasks[i] != NULL && st == NFFI_OK;
        if (i == 0)
            first = nffi_task_id(tasks[0]);
        ok &= nffi_task_id(tasks[i]) == first + (uint64_t)i;
    }
    CHECK(ok);
    int n = drain_wait(got, N, 60 * SEC);
    CHECK(n == N);
    ok = 1;
    for (int k = 0; k < n; k++) {
        nffi_task *t = got[k];
        uint64_t i = nffi_task_id(t) - first;
        ok &= i < N && t == tasks[i] && nffi_task_state(t) == NFFI_TASK_READY;
        char *rsp;
        size_t rlen;
        int rc = nffi_task_result(t, &rsp, &rlen);
        ok &= rc == (int)(len[i] % 5) && rlen == len[i] && rsp != NULL &&
              memcmp(rsp, req[i], rlen) == 0 && rsp[rlen] == '\0';
        nffi_task_release(t);
    }
    CHECK(ok);
    nffi_stats s = stats_of(rt);
    CHECK(s.depth == 0 && s.in_flight == 0 && s.live == 0);
    if (INST) {
        CHECK(s.enqueued == N && s.polled == N && s.responded == N && s.resumed == N);
        CHECK(s.rejected == 0 && s.timeouts == 0 && s.late == 0);
        int exact = every == 1 || all;
        CHECK(s.lat_sample_every == (every > 0 ? every : 64));
        if (exact) {
            CHECK(s.lat_samples == N);
        } else {
            /* the submits take a few ms: a task a millisecond, and ~1 in 64 of
             * the rest standing for 64 each, so the count estimates N (~47
             * drawn: +-440 a sigma; the bounds are 5 sigma and more) */
            CHECK(s.lat_samples >= 1 && s.lat_samples < N / 4);
            CHECK(s.lat_count[NFFI_LAT_TOTAL] > N / 4 && s.lat_count[NFFI_LAT_TOTAL] < 4 * N);
        }
        for (int k = 0; k < 4; k++) {
            CHECK(s.lat_count[k] == (exact ? N : s.lat_count[NFFI_LAT_TOTAL]) && s.lat_max_ns[k] > 0);
            double q50 = nffi_runtime_quantile(rt, k, 0.5), q99 = nffi_runtime_quantile(rt, k, 0.99);
            CHECK(q50 <= q99 && q99 <= (double)s.lat_max_ns[k]);
            CHECK(nffi_runtime_quantile(rt, k, 1.0) == (double)s.lat_max_ns[k]);
        }
        CHECK(s.lat_sum_ns[NFFI_LAT_TOTAL] >= s.lat_sum_ns[NFFI_LAT_QUEUE]);
        CHECK(nffi_runtime_quantile(rt, NFFI_LAT_TOTAL, 0.5) > 0);
    } else {
        CHECK(s.enqueued == 0 && s.lat_count[NFFI_LAT_TOTAL] == 0);
        CHECK(nffi_runtime_quantile(rt, NFFI_LAT_TOTAL, 0.5) == 0);
    }
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, NT) == N);
    for (int i = 0; i < N; i++)
        free(req[i]);
    nffi_latency_all(0);
}

static void test_roundtrip(void)
{
    roundtrip(1, 0);
    roundtrip(0, 0);
    roundtrip(0, 1);
}

/* A runtime's calls 1 ms apart by the coarse clock are every one stamped,
 * each standing for itself; a burst past that is sampled, its count
 * estimated. */
static void test_lat_gap(void)
{
    enum { SPACED = 20, BURST = 4000 };
    nffi_runtime *rt = new_rt("gap", 0);
    struct rthread th[1];
    start_threads(th, 1, rt, 0);
    static nffi_task *got[BURST];
    int ok = 1, st;
    for (int i = 0; i < SPACED; i++) {
        nffi_task *t = nffi_task_submit(rt, "spaced", 6, "x", 1, 0, &st);
        ok &= t != NULL && drain_wait(got, 1, 10 * SEC) == 1 && got[0] == t;
        nffi_task_info info;
        ok &= nffi_task_get_info(t, &info) == NFFI_OK;
        nffi_task_result(t, NULL, NULL);
        nffi_task_release(t);
        /* the gap is judged on the coarse clock, which lags the exact one by
         * up to ~7 ms here (one to two ticks): the next call comes once it
         * reads 1 ms past this one's stamp */
        struct timespec c;
        do {
            usleep(200);
            clock_gettime(CLOCK_MONOTONIC_COARSE, &c);
        } while ((int64_t)c.tv_sec * 1000000000 + c.tv_nsec < info.t_enqueued + 1000000);
    }
    CHECK(ok);
    nffi_stats s = stats_of(rt);
    if (INST) {
        CHECK(s.lat_samples == SPACED && s.lat_count[NFFI_LAT_TOTAL] == SPACED);
    } else {
        CHECK(s.lat_samples == 0 && s.lat_count[NFFI_LAT_TOTAL] == 0);
    }
    static nffi_task *burst[BURST];
    for (int i = 0; i < BURST; i++) {
        burst[i] = nffi_task_submit(rt, "burst", 5, "y", 1, 0, &st);
        ok &= burst[i] != NULL;
    }
    CHECK(ok);
    CHECK(drain_wait(got, BURST, 60 * SEC) == BURST);
    for (int i = 0; i < BURST; i++) {
        nffi_task_result(got[i], NULL, NULL);
        nffi_task_release(got[i]);
    }
    nffi_stats b = stats_of(rt);
    if (INST) {
        uint64_t samples = b.lat_samples - s.lat_samples;
        uint64_t counted = b.lat_count[NFFI_LAT_TOTAL] - s.lat_count[NFFI_LAT_TOTAL];
        /* ~1 in 64 and one a millisecond of the burst's submits: far fewer than
         * all; the weighted count ~4000 (+-510 a sigma; the bounds are ~5) */
        CHECK(samples >= 1 && samples < BURST / 8);
        CHECK(counted > BURST / 3 && counted < BURST * 3);
    }
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, 1) == SPACED + BURST);
}

static void no_kick(void)
{
}

/* On the staged path (a kick hook set, as under nginx's event loop) with long
 * turns, the weighted count still estimates the tasks: 32 live in a closed
 * loop, 100 us of work a resume, so a turn takes ~3 ms and the 1 ms gap falls
 * inside turns (the gap was once decided on another clock than the stamp's
 * for the tasks the draw picked: the count read ~0.5 of the tasks here). */
static void test_lat_staged(void)
{
    enum { LIVE = 32, TOTAL = 8000, NT = 2, EVERY = 16 };
    nffi_runtime *rt = new_rt("staged", 0);
    nffi_runtime_set_lat_sample(rt, EVERY);
    struct rthread th[NT];
    start_threads(th, NT, rt, 0);
    nffi_fast_set_kick((void *)no_kick);
    int ok = 1, st, submitted = 0, done = 0;
    static nffi_task *got[LIVE];
    for (; submitted < LIVE; submitted++)
        ok &= nffi_task_submit(rt, "s", 1, "z", 1, 0, &st) != NULL;
    nffi_kick_pollers();
    while (ok && done < TOTAL) {
        int n = drain_wait(got, 1, 10 * SEC);
        n += nffi_drain(got + n, LIVE - n);
        ok &= n > 0;
        for (int i = 0; i < n; i++) {
            nffi_task_result(got[i], NULL, NULL);
            nffi_task_release(got[i]);
            done++;
            int64_t until = nffi_now_ns() + 100000;     /* the resumed coroutine's work */
            while (nffi_now_ns() < until)
                ;
            if (submitted < TOTAL) {
                ok &= nffi_task_submit(rt, "s", 1, "z", 1, 0, &st) != NULL;
                submitted++;
            }
        }
        nffi_kick_pollers();
    }
    nffi_fast_set_kick(NULL);
    CHECK(ok && done == TOTAL);
    nffi_stats s = stats_of(rt);
    if (INST) {
        double ratio = (double)s.lat_count[NFFI_LAT_TOTAL] / (double)s.resumed;
        /* ~450 drawn at 1 in 16: +-4% a sigma; the bounds are ~5 */
        if (!(ratio > 0.8 && ratio < 1.2))
            printf("  staged: %llu counted of %llu\n", (unsigned long long)s.lat_count[NFFI_LAT_TOTAL],
                   (unsigned long long)s.resumed);
        CHECK(ratio > 0.8 && ratio < 1.2);
    }
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, NT) == TOTAL);
}

/* A runtime that opted out of instrumentation serves byte-exact as any other,
 * with what libnffi_noinst gives: no stamps, no latencies, no counters but the
 * pollers' and live; the choice changes only while none of its tasks is live. */
static void test_opt_out(void)
{
    enum { N = 200, NT = 2 };
    nffi_runtime *rt = new_rt("opt-out", 0);
    CHECK(nffi_runtime_set_instrumented(NULL, 0) == NFFI_EINVAL);
    {
        /* a live task (even one no poller took) holds the choice; once it is
         * gone, the choice may change */
        nffi_runtime *late = new_rt("opt-out-late", 0);
        int st0;
        nffi_task *t0 = nffi_task_submit(late, "a", 1, "b", 1, 0, &st0);
        CHECK(t0 != NULL);
        CHECK(nffi_runtime_set_instrumented(late, 0) == NFFI_EINVAL);
        CHECK(nffi_runtime_set_instrumented(late, 1) == NFFI_OK);   /* what it is */
        nffi_task_abandon(t0);
        CHECK(nffi_runtime_set_instrumented(late, 0) == NFFI_OK);
        CHECK(stats_of(late).lat_sample_every == 0);
        /* abandoned while a runtime thread holds it: it holds the choice until
         * the response is drained, and is counted late by the setting it was
         * submitted with */
        CHECK(nffi_runtime_set_instrumented(late, 1) == NFFI_OK);
        nffi_task *t1 = nffi_task_submit(late, "a", 1, "c", 1, 0, &st0);
        CHECK(t1 != NULL && ngx_http_lua_ffi_task_poll(late) == t1);
        CHECK(nffi_task_abandon(t1) == 0);
        CHECK(nffi_runtime_set_instrumented(late, 0) == NFFI_EINVAL);
        ngx_http_lua_ffi_respond(t1, 0, NULL, 0);
        nffi_task *none[1];
        CHECK(nffi_drain(none, 1) == 0);
        nffi_stats ls = stats_of(late);
        /* t0 and t1 timed out, both submitted while on */
        CHECK(ls.live == 0 && ls.late == (INST ? 1u : 0u) && ls.timeouts == (INST ? 2u : 0u));
        CHECK(nffi_runtime_set_instrumented(late, 0) == NFFI_OK);
        nffi_runtime_finish(late);
    }
    CHECK(nffi_runtime_set_instrumented(rt, 0) == NFFI_OK);
    nffi_latency_all(1);        /* asked for every task's latencies: still none */
    struct rthread th[NT];
    start_threads(th, NT, rt, 1);
    static nffi_task *tasks[N], *got[N];
    char req[N][24];
    int ok = 1, st;
    for (int i = 0; i < N; i++) {
        snprintf(req[i], sizeof(req[i]), "opt-out %d", i);
        tasks[i] = nffi_task_submit(rt, "echo", 4, req[i], strlen(req[i]), (uint32_t)i, &st);
        ok &= tasks[i] != NULL && st == NFFI_OK;
        nffi_task_info info;
        ok &= nffi_task_get_info(tasks[i], &info) == NFFI_OK && info.t_enqueued == 0;
    }
    CHECK(ok);
    /* tasks are live: the choice cannot change now */
    CHECK(nffi_runtime_set_instrumented(rt, 1) == NFFI_EINVAL);
    CHECK(drain_wait(got, N, 60 * SEC) == N);
    ok = 1;
    for (int k = 0; k < N; k++) {
        uint64_t i = nffi_task_id(got[k]) - nffi_task_id(tasks[0]);
        char *rsp;
        size_t rlen;
        int rc = nffi_task_result(got[k], &rsp, &rlen);
        ok &= i < N && rc == (int)(strlen(req[i]) % 5) && rlen == strlen(req[i]) &&
              memcmp(rsp, req[i], rlen) == 0;
        nffi_task_release(got[k]);
    }
    CHECK(ok);
    nffi_latency_all(0);
    nffi_stats s = stats_of(rt);
    CHECK(s.polled == N && s.responded == N && s.live == 0 && s.depth == 0);
    CHECK(s.enqueued == 0 && s.resumed == 0 && s.lat_samples == 0 && s.lat_sample_every == 0);
    for (int k = 0; k < 4; k++)
        CHECK(s.lat_count[k] == 0 && s.lat_sum_ns[k] == 0);
    /* idle again: instrumented from here on, the counters cover those tasks */
    CHECK(nffi_runtime_set_instrumented(rt, 1) == NFFI_OK);
    nffi_task *t = nffi_task_submit(rt, "echo", 4, "on", 2, 0, &st);
    nffi_task_info info;
    CHECK(t != NULL && nffi_task_get_info(t, &info) == NFFI_OK && (info.t_enqueued != 0) == INST);
    CHECK(drain_wait(got, 1, 60 * SEC) == 1 && got[0] == t);
    char *rsp;
    size_t rlen;
    CHECK(nffi_task_result(t, &rsp, &rlen) == 2 && rlen == 2 && memcmp(rsp, "on", 2) == 0);
    nffi_task_release(t);
    s = stats_of(rt);
    CHECK(s.enqueued == (INST ? 1u : 0u) && s.resumed == (INST ? 1u : 0u) && s.live == 0);
    CHECK(s.lat_sample_every == (INST ? 64 : 0) && s.polled == N + 1);
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, NT) == N + 1);
}

static void test_queue_full(void)
{
    nffi_runtime *rt = new_rt("full", 3);
    int st;
    nffi_task *t1 = nffi_task_submit(rt, "a", 1, "1", 1, 1, &st);
    nffi_task *t2 = nffi_task_submit(rt, "a", 1, "2", 1, 2, &st);
    nffi_task *t3 = nffi_task_submit(rt, "a", 1, "3", 1, 3, &st);
    CHECK(t1 && t2 && t3);
    CHECK(nffi_task_submit(rt, "a", 1, "4", 1, 4, &st) == NULL && st == NFFI_EFULL);
    nffi_stats s = stats_of(rt);
    CHECK(s.depth == 3 && s.live == 3 && s.rejected == (INST ? 1u : 0u));

    CHECK(nffi_task_abandon(t2) == 1);                   /* PENDING, mid-queue */
    s = stats_of(rt);
    CHECK(s.depth == 2 && s.live == 2 && s.timeouts == (INST ? 1u : 0u));
    CHECK(ngx_http_lua_ffi_task_poll(rt) == t1);
    CHECK(ngx_http_lua_ffi_task_poll(rt) == t3);         /* order survives the unlink */
    CHECK(stats_of(rt).in_flight == 2);
    ngx_http_lua_ffi_respond(t3, 3, strdup("three"), 0);
    ngx_http_lua_ffi_respond(t1, 1, NULL, 0);
    nffi_task *got[4];
    CHECK(drain_wait(got, 2, SEC) == 2 && got[0] == t3 && got[1] == t1);  /* completion order */
    char *rsp = (char *)1;
    size_t rl = 9;
    CHECK(nffi_task_result(t1, &rsp, &rl) == 1 && rsp == NULL && rl == 0);
    CHECK(nffi_task_result(t3, &rsp, &rl) == 3 && rl == 5 && memcmp(rsp, "three", 5) == 0);
    nffi_task_release(t1);
    nffi_task_release(t3);
    nffi_task_release(NULL);

    nffi_runtime_finish(rt);
    CHECK(nffi_task_submit(rt, "a", 1, "5", 1, 5, &st) == NULL && st == NFFI_EFINISHED);
    CHECK(ngx_http_lua_ffi_task_poll(rt) == NULL && ngx_http_lua_ffi_task_poll(rt) == NULL);
    s = stats_of(rt);
    CHECK(s.live == 0 && s.depth == 0 && s.in_flight == 0);
    if (INST)
        CHECK(s.rejected == 2 && s.enqueued == 3 && s.resumed == 2);
}

static void *timed_join(struct rthread *th, int n, int64_t timeout_ns, int *all)
{
    *all = 1;
    for (int i = 0; i < n; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(timeout_ns / SEC);
        *all &= pthread_timedjoin_np(th[i].th, NULL, &ts) == 0;
    }
    return NULL;
}

static void test_finish(void)
{
    enum { N = 20, NT = 4 };
    nffi_runtime *rt = new_rt("finish", 0);
    nffi_task *got[N];
    int st;
    for (int i = 0; i < N; i++)
        CHECK(nffi_task_submit(rt, "", 0, "abc", 3, 0, &st) != NULL);
    nffi_runtime_finish(rt);
    CHECK(nffi_task_submit(rt, "", 0, "abc", 3, 0, &st) == NULL && st == NFFI_EFINISHED);
    struct rthread th[NT];
    start_threads(th, NT, rt, 1);
    int all;
    timed_join(th, NT, 10 * SEC, &all);                  /* each poller saw NULL */
    CHECK(all);
    int served = 0;
    for (int i = 0; i < NT; i++)
        served += th[i].served;
    CHECK(served == N);
    CHECK(ngx_http_lua_ffi_task_poll(rt) == NULL);
    CHECK(drain_wait(got, N, SEC) == N);
    for (int i = 0; i < N; i++) {
        char *rsp;
        size_t rl;
        CHECK(nffi_task_result(got[i], &rsp, &rl) == 3 && rl == 3 && memcmp(rsp, "abc", 3) == 0);
        nffi_task_release(got[i]);
    }

    /* Pollers asleep on an empty queue all wake up on finish. */
    nffi_runtime *rt2 = new_rt("finish2", 0);
    start_threads(th, NT, rt2, 0);
    usleep(20000);
    nffi_runtime_finish(rt2);
    timed_join(th, NT, 10 * SEC, &all);
    CHECK(all);
    CHECK(stats_of(rt).live == 0 && stats_of(rt2).live == 0);
}

static void test_abandon(void)
{
    nffi_runtime *rt = new_rt("abandon", 0);
    nffi_task *got[4];
    int st;

    /* POLLED: deferred, freed by drain when the late response arrives. */
    nffi_task *t = nffi_task_submit(rt, "m", 1, "p", 1, 0, &st);
    void *p = ngx_http_lua_ffi_task_poll(rt);
    CHECK(p == t && nffi_task_state(t) == NFFI_TASK_POLLED);
    CHECK(nffi_task_abandon(t) == 0);
    CHECK(nffi_task_state(t) == NFFI_TASK_ABANDONED);
    nffi_task_info info;
    CHECK(nffi_runtime_tasks(rt, 0, &info, 1) == 1 && info.state == NFFI_TASK_ABANDONED);
    ngx_http_lua_ffi_respond(p, 0, strdup("late"), 0);
    CHECK(drain_wait(got, 1, SEC / 20) == 0);
    nffi_stats s = stats_of(rt);
    CHECK(s.live == 0 && s.in_flight == 0);
    if (INST)
        CHECK(s.late == 1 && s.timeouts == 1);

    /* DONE: on the done list when abandoned. */
    t = nffi_task_submit(rt, "m", 1, "d", 1, 0, &st);
    p = ngx_http_lua_ffi_task_poll(rt);
    ngx_http_lua_ffi_respond(p, 0, strdup("x"), 1);
    CHECK(nffi_task_state(t) == NFFI_TASK_DONE);
    CHECK(nffi_task_abandon(t) == 0);
    CHECK(drain_wait(got, 1, SEC / 20) == 0);
    s = stats_of(rt);
    CHECK(s.live == 0);
    if (INST)
        CHECK(s.late == 2 && s.timeouts == 2);

    /* READY: drained but the waiter gave up before resuming. */
    t = nffi_task_submit(rt, "m", 1, "r", 1, 0, &st);
    p = ngx_http_lua_ffi_task_poll(rt);
    ngx_http_lua_ffi_respond(p, 0, strdup("y"), 0);
    CHECK(drain_wait(got, 1, SEC) == 1 && got[0] == t && nffi_task_state(t) == NFFI_TASK_READY);
    CHECK(nffi_task_abandon(t) == 1);
    s = stats_of(rt);
    CHECK(s.live == 0);
    if (INST)
        CHECK(s.late == 2 && s.timeouts == 3);

    /* DONE but already swapped into drain's backlog (array was full). */
    nffi_task *a = nffi_task_submit(rt, "m", 1, "a", 1, 0, &st);
    nffi_task *b = nffi_task_submit(rt, "m", 1, "b", 1, 0, &st);
    void *pa = ngx_http_lua_ffi_task_poll(rt), *pb = ngx_http_lua_ffi_task_poll(rt);
    ngx_http_lua_ffi_respond(pa, 0, strdup("a"), 0);
    ngx_http_lua_ffi_respond(pb, 0, strdup("b"), 0);
    CHECK(nffi_drain(got, 1) == 1 && got[0] == a);
    CHECK(nffi_task_abandon(b) == 0);
    CHECK(nffi_drain(got, 4) == 0);
    nffi_task_release(a);
    s = stats_of(rt);
    CHECK(s.live == 0);
    if (INST)
        CHECK(s.late == 3 && s.timeouts == 4);

    /* PENDING at the queue tail, then the queue keeps working. */
    t = nffi_task_submit(rt, "m", 1, "q", 1, 0, &st);
    CHECK(nffi_task_abandon(t) == 1 && stats_of(rt).depth == 0);
    t = nffi_task_submit(rt, "m", 1, "z", 1, 0, &st);
    CHECK(ngx_http_lua_ffi_task_poll(rt) == t);
    /* Releasing a task that is not READY is treated as an abandon. */
    nffi_task_release(t);
    ngx_http_lua_ffi_respond(t, 0, NULL, 0);
    CHECK(drain_wait(got, 1, SEC / 20) == 0);
    s = stats_of(rt);
    CHECK(s.live == 0 && s.depth == 0 && s.in_flight == 0);
    if (INST)
        CHECK(s.late == 4 && s.timeouts == 6 && s.resumed == 0);
    nffi_runtime_finish(rt);
}

/* Responds to one task only once the worker is inside nffi_task_spin. */
static void *respond_while_spinning(void *arg)
{
    nffi_task *t = ngx_http_lua_ffi_task_poll(arg);
    while (__atomic_load_n(&t->direct, __ATOMIC_ACQUIRE) != NFFI__DIRECT_SPINNING)
        sched_yield();
    ngx_http_lua_ffi_respond(t, 42, strdup("direct"), 0);
    return NULL;
}

static void test_spin_paths(void)
{
    nffi_runtime *rt = new_rt("spin1", 0);
    int st;
    char *rsp;
    size_t rl;
    nffi_task *t = nffi_task_submit(rt, "", 0, "q", 1, 0, &st), *got[2];
    pthread_t th;
    pthread_create(&th, NULL, respond_while_spinning, rt);
    CHECK(nffi_task_spin(t, 30 * SEC) == 1 && nffi_task_state(t) == NFFI_TASK_READY);
    CHECK(nffi_task_result(t, &rsp, &rl) == 42 && rl == 6 && memcmp(rsp, "direct", 6) == 0);
    nffi_task_release(t);
    pthread_join(th, NULL);
    CHECK(nffi_drain(got, 2) == 0);                      /* skipped the done list */

    /* Already responded: spin declines, the pump delivers. */
    t = nffi_task_submit(rt, "", 0, "q", 1, 0, &st);
    ngx_http_lua_ffi_respond(ngx_http_lua_ffi_task_poll(rt), 1, NULL, 0);
    CHECK(nffi_task_spin(t, SEC) == 0 && nffi_task_state(t) == NFFI_TASK_DONE);
    CHECK(nffi_drain(got, 2) == 1 && got[0] == t && nffi_task_spin(t, SEC) == 0);
    CHECK(nffi_task_result(t, NULL, NULL) == 1);
    nffi_task_release(t);

    /* Nobody responds: spin times out and a later respond takes the normal path. */
    t = nffi_task_submit(rt, "", 0, "q", 1, 0, &st);
    void *p = ngx_http_lua_ffi_task_poll(rt);
    int64_t t0 = nffi_now_ns();
    CHECK(nffi_task_spin(t, 2000000) == 0 && nffi_now_ns() - t0 >= 2000000);
    CHECK(nffi_task_state(t) == NFFI_TASK_POLLED);
    ngx_http_lua_ffi_respond(p, 2, NULL, 0);
    CHECK(nffi_drain(got, 2) == 1 && got[0] == t && nffi_task_result(t, NULL, NULL) == 2);
    nffi_task_release(t);
    CHECK(stats_of(rt).live == 0 && stats_of(rt).in_flight == 0);
    nffi_runtime_finish(rt);
}

/* Race the direct-completion handshake against respond, many times. Which
 * path wins is up to the scheduler; every response must arrive exactly once. */
static void test_spin(void)
{
    enum { NT = 1, BATCH = 2 };
    int iters = 6000;
    nffi_runtime *rt = new_rt("spin", 0);
    nffi_runtime_set_poll_spin(rt, 2000);      /* keep the poller awake */
    struct rthread th[NT];
    start_threads(th, NT, rt, 2);
    unsigned seed = 7;
    int direct = 0, pumped = 0, ok = 1, delivered = 0;
    for (int i = 0; i < iters; i += BATCH) {
        nffi_task *t[BATCH];
        char buf[BATCH][32];
        int done[BATCH] = {0};
        for (int j = 0; j < BATCH; j++) {
            int st;
            int n = snprintf(buf[j], sizeof(buf[j]), "spin-%d", i + j);
            t[j] = nffi_task_submit(rt, "", 0, buf[j], (size_t)n, (uint32_t)j, &st);
            ok &= t[j] != NULL;
        }
        for (int j = 0; j < BATCH; j++) {
            int64_t max_ns = rand_r(&seed) % 4 == 0 ? 0 : rand_r(&seed) % 40000;
            if (nffi_task_spin(t[j], max_ns)) {
                ok &= nffi_task_state(t[j]) == NFFI_TASK_READY;
                char *rsp;
                size_t rl;
                ok &= nffi_task_result(t[j], &rsp, &rl) == (int)(strlen(buf[j]) % 5) &&
                      rl == strlen(buf[j]) && memcmp(rsp, buf[j], rl) == 0;
                nffi_task_release(t[j]);
                done[j] = 1;
                direct++;
                delivered++;
            }
        }
        int64_t deadline = nffi_now_ns() + 10 * SEC;
        while (nffi_now_ns() < deadline) {
            int rest = 0;
            for (int j = 0; j < BATCH; j++)
                rest += !done[j];
            if (rest == 0)
                break;
            nffi_task *got[BATCH];
            int n = nffi_drain(got, BATCH);
            for (int k = 0; k < n; k++) {
                int j = 0;
                while (j < BATCH && (done[j] || got[k] != t[j]))
                    j++;
                ok &= j < BATCH;                         /* never delivered twice */
                if (j == BATCH)
                    continue;
                char *rsp;
                size_t rl;
                ok &= nffi_task_result(got[k], &rsp, &rl) >= 0 && memcmp(rsp, buf[j], rl) == 0;
                nffi_task_release(got[k]);
                done[j] = 1;
                pumped++;
                delivered++;
            }
            if (n == 0)
                usleep(10);
        }
    }
    CHECK(ok);
    CHECK(delivered == iters);
    CHECK(direct + pumped == iters);
    nffi_task *extra[1];
    CHECK(nffi_drain(extra, 1) == 0);
    nffi_stats s = stats_of(rt);
    CHECK(s.live == 0 && s.in_flight == 0);
    if (INST)
        CHECK(s.resumed == (uint64_t)iters && s.responded == (uint64_t)iters);
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, NT) == iters);
    printf("spin: %d direct, %d via the done list\n", direct, pumped);
}

static void test_snapshot(void)
{
    enum { N = 10 };
    nffi_runtime *rt = new_rt("snap", 0);
    nffi_task *t[N];
    char big[100];
    memset(big, 'B', sizeof(big));
    int st;
    for (int i = 0; i < N; i++) {
        char req[16];
        int n = snprintf(req, sizeof(req), "req-%d", i);
        t[i] = i == 5 ? nffi_task_submit(rt, "A-VERY-LONG-METHOD-NAME-EXCEEDING-32", 36, big,
                                          sizeof(big), 500, &st)
                      : nffi_task_submit(rt, "GET", 3, req, (size_t)n, (uint32_t)(100 + i), &st);
    }
    nffi_task_info out[N + 2];
    uint64_t after = 0, prev = 0;
    int total = 0, pages = 0, ok = 1;
    for (;;) {
        int n = nffi_runtime_tasks(rt, after, out, 3);
        if (n == 0)
            break;
        pages++;
        for (int k = 0; k < n; k++) {
            ok &= out[k].id > prev && out[k].id == nffi_task_id(t[total]);
            ok &= out[k].state == NFFI_TASK_PENDING && out[k].t_polled == 0;
            ok &= INST ? out[k].t_enqueued > 0 : out[k].t_enqueued == 0;
            prev = out[k].id;
            total++;
        }
        after = out[n - 1].id;
    }
    CHECK(ok && total == N && pages == 4);
    CHECK(nffi_runtime_tasks(rt, 0, out, N + 2) == N);
    CHECK(strcmp(out[0].method, "GET") == 0 && out[0].waiter == 100 && out[0].req_len == 5);
    CHECK(strlen(out[5].method) == 31 && out[5].waiter == 500 && out[5].req_len == 100);
    if (INST) {
        CHECK(out[0].preview_len == 5 && memcmp(out[0].preview, "req-0", 5) == 0);
        CHECK(out[5].preview_len == 64 && out[5].preview[63] == 'B');
    } else {
        CHECK(out[0].preview_len == 0 && out[5].preview_len == 0);
    }
    /* From near the tail (walks backwards) and past the tail. */
    CHECK(nffi_runtime_tasks(rt, nffi_task_id(t[7]), out, N) == 2 && out[0].id == nffi_task_id(t[8]));
    CHECK(nffi_runtime_tasks(rt, nffi_task_id(t[9]), out, N) == 0);
    CHECK(nffi_runtime_tasks(rt, nffi_task_id(t[2]), out, 1) == 1 && out[0].id == nffi_task_id(t[3]));

    /* States move; removed tasks vanish from the listing. */
    CHECK(nffi_task_abandon(t[3]) == 1);
    void *p = ngx_http_lua_ffi_task_poll(rt);
    CHECK(p == t[0]);
    ngx_http_lua_ffi_respond(p, 9, NULL, 0);
    CHECK(nffi_runtime_tasks(rt, 0, out, N) == N - 1);
    CHECK(out[0].state == NFFI_TASK_DONE && out[0].rc == 9 && out[2].id == nffi_task_id(t[2]) &&
          out[3].id == nffi_task_id(t[4]));
    if (INST)
        CHECK(out[0].t_polled >= out[0].t_enqueued && out[0].t_responded >= out[0].t_polled);
    nffi_task *got[1];
    CHECK(drain_wait(got, 1, SEC) == 1 && got[0] == t[0]);
    CHECK(nffi_runtime_tasks(rt, 0, out, 1) == 1 && out[0].state == NFFI_TASK_READY);
    nffi_task_release(t[0]);
    for (int i = 1; i < N; i++)
        if (i != 3)
            CHECK(nffi_task_abandon(t[i]) == 1);
    CHECK(nffi_runtime_tasks(rt, 0, out, N) == 0 && stats_of(rt).live == 0);
    nffi_runtime_finish(rt);
}

/* The process-wide registry: every runtime's tasks in id order, pages that start
 * where the last one stopped (also after the task it stopped at is freed),
 * counts bounded per call. Tasks other tests left behind come before ours. */
static void test_registry(void)
{
    enum { N = 300 };
    nffi_runtime *a = new_rt("reg-a", 0), *b = new_rt("reg-b", 0);
    static nffi_task *t[N];
    static nffi_task_info out[N];
    int st, ok = 1;
    for (int i = 0; i < N; i++)
        t[i] = nffi_task_submit(i % 3 == 0 ? b : a, "m", 1, "r", 1, (uint32_t)i, &st);
    uint64_t before = nffi_task_id(t[0]) - 1;
    int64_t all = nffi_tasks_count(0, 0, 0, NULL);
    CHECK(all >= N && stats_of(a).live + stats_of(b).live == N);

    /* Pages of 7 in id order across both runtimes. */
    uint64_t after = before;
    int seen = 0;
    for (;;) {
        int n = nffi_tasks(after, out, 7);
        if (n == 0)
            break;
        for (int k = 0; k < n; k++) {
            ok &= out[k].id == nffi_task_id(t[seen]);
            ok &= out[k].runtime == (seen % 3 == 0 ? b : a) && out[k].waiter == (uint32_t)seen;
            seen++;
        }
        after = out[n - 1].id;
    }
    CHECK(ok && seen == N);

    /* The task a page stopped at is freed (the hint moves back), and so are a few
     * around it: the next page still starts right after the last id returned. */
    CHECK(nffi_tasks(before, out, 10) == 10 && out[9].id == nffi_task_id(t[9]));
    for (int i = 8; i <= 12; i++)
        CHECK(nffi_task_abandon(t[i]) == 1);
    CHECK(nffi_tasks(nffi_task_id(t[9]), out, 2) == 2 && out[0].id == nffi_task_id(t[13]));
    /* A page read only in part: the next one starts inside it. */
    CHECK(nffi_tasks(nffi_task_id(t[20]), out, 40) == 40);
    CHECK(nffi_tasks(nffi_task_id(t[25]), out, 1) == 1 && out[0].id == nffi_task_id(t[26]));
    /* Far from every hint: the nearer end. */
    CHECK(nffi_tasks(nffi_task_id(t[150]), out, 1) == 1 && out[0].id == nffi_task_id(t[151]));
    CHECK(nffi_tasks(nffi_task_id(t[N - 1]), out, 1) == 0);

    /* Counts, resumed every 16 visits; with a time bound, a prefix. */
    int64_t counted = 0;
    after = before;
    int calls = 0;
    do {
        uint64_t next;
        counted += nffi_tasks_count(after, INT64_MAX, 16, &next);
        after = next;
        calls++;
    } while (after != 0);
    CHECK(counted == (INST ? N - 5 : 0) && calls >= (N - 5) / 16);
    CHECK(nffi_tasks_count(0, 0, 0, NULL) == all - 5);
    CHECK(nffi_tasks_count(before, 0, 0, NULL) == NFFI_EINVAL);
    if (INST) {
        CHECK(nffi_tasks(nffi_task_id(t[99]), out, 1) == 1);
        int64_t cut = out[0].t_enqueued;
        uint64_t next = 1;
        int64_t n = nffi_tasks_count(before, cut, 1000, &next);
        /* everything up to t[100], plus same-nanosecond neighbours after it */
        CHECK(n >= 100 - 5 + 1 && next == 0);
    }
    for (int i = 0; i < N; i++)
        if (i < 8 || i > 12)
            CHECK(nffi_task_abandon(t[i]) == 1);
    CHECK(nffi_tasks_count(0, 0, 0, NULL) == all - N);
    nffi_runtime_finish(a);
    nffi_runtime_finish(b);
}

static void test_hist(void)
{
    static nffi__hist h;
    CHECK(nffi__hist_quantile(&h, 0.5) == 0);
    for (int v = 1; v <= 1000; v++)
        nffi__hist_add(&h, v, 1);
    double q50 = nffi__hist_quantile(&h, 0.5);
    CHECK(q50 >= 500 && q50 <= 625);
    double q90 = nffi__hist_quantile(&h, 0.9);
    CHECK(q90 >= 900 && q90 <= 1125);
    CHECK(nffi__hist_quantile(&h, 1.0) == 1000);
    CHECK(nffi__hist_quantile(&h, 0.0) == 1);
    CHECK(nffi__hist_quantile(&h, 7.0) == 1000 && nffi__hist_quantile(&h, -1) == 1);
    CHECK(h.count == 1000 && h.sum == 500500 && h.max == 1000);
    nffi__hist_add(&h, (int64_t)1 << 45, 1);                /* beyond the last bucket */
    CHECK(nffi__hist_quantile(&h, 1.0) == (double)((int64_t)1 << 45));
    nffi__hist_add(&h, -5, 1);                              /* clamped to 0 */
    CHECK(nffi__hist_quantile(&h, 0.0) == 0);
    /* Bucket bounds stay within 25% of every sampled value. */
    static nffi__hist g;
    int ok = 1;
    for (int64_t v = 3; v < ((int64_t)1 << 40); v = v * 3 / 2 + 1) {
        memset(&g, 0, sizeof(g));
        nffi__hist_add(&g, v, 1);
        nffi__hist_add(&g, v * 2, 1);
        double q = nffi__hist_quantile(&g, 0.5);
        ok &= q >= (double)v && q <= (double)v * 1.25 + 1;
    }
    CHECK(ok);
}

/* ---------- eventfd path ---------- */

/* Plays lua-nginx-module's ngx_http_lua_ffi_sema_post: records what it got. */
static void *fast_posted[4096];
static int fast_n_posted;

static int fake_sema_post(void *sema, int n)
{
    if (n == 1 && fast_n_posted < 4096)
        fast_posted[fast_n_posted++] = sema;
    return 0;
}

static int fast_kicks;

static void fake_kick(void)
{
    fast_kicks++;
}

static int fast_signalled(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

/* Waits up to a second until n of rt's pollers sleep in the queue's condvar. */
static void wait_sleepers(nffi_runtime *rt, int n)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&rt->qlock);
        int asleep = rt->sleepers;
        pthread_mutex_unlock(&rt->qlock);
        if (asleep >= n)
            return;
        usleep(1000);
    }
}

/* Drains the eventfd until n semaphores were posted (fast_posted) or the time
 * is up; returns how many were. */
static int wait_posted(int fd, int n, int64_t within_ns)
{
    fast_n_posted = 0;
    for (int64_t end = nffi_now_ns() + within_ns; fast_n_posted < n && nffi_now_ns() < end;)
        if (fast_signalled(fd, 100))
            nffi_fast_drain();
    return fast_n_posted;
}

static int wait_hooks;
static void count_wait_hook(void)
{
    wait_hooks++;
}

static void test_fast(void)
{
    nffi_task *got[64];
    nffi_wake_stats ws;
    char sema[64];
    int st;
    nffi_drain(got, 64);
    CHECK(nffi_fast_install(NULL) == NFFI_EINVAL);
    nffi_runtime *rt = new_rt("fast", 0);
    nffi_task *t = nffi_task_submit(rt, "", 0, "x", 1, 0, &st);
    int fd = nffi_fast_install((void *)fake_sema_post);
    CHECK(fd >= 0 && fast_signalled(fd, 0));         /* a first signal: drain what is done */
    nffi_fast_drain();
    CHECK(!fast_signalled(fd, 0));
    nffi_task_abandon(t);
    CHECK(nffi_fast_install((void *)fake_sema_post) == fd);  /* one eventfd per process */
    nffi_fast_drain();

    /* 40 waiters with semaphores: one signal, one drain posts all, in completion
     * order; nothing is handed to the pump. */
    nffi_task *ts[40];
    for (int i = 0; i < 40; i++) {
        ts[i] = nffi_task_submit(rt, "", 0, "f", 1, 0, &st);
        CHECK(nffi_task_set_sema(ts[i], &sema[i]) == 0);
    }
    CHECK(nffi_task_set_sema(NULL, &sema[0]) == NFFI_EINVAL && nffi_task_set_sema(ts[0], NULL) == NFFI_EINVAL);
    nffi_wake_stats_get(&ws);
    uint64_t signals = ws.signals;
    CHECK(ws.outstanding == 40 && ws.fast_on == 1 && ws.fast_fd == fd);
    for (int i = 0; i < 40; i++)
        ngx_http_lua_ffi_respond(ngx_http_lua_ffi_task_poll(rt), i, NULL, 0);
    CHECK(fast_signalled(fd, 1000));
    fast_n_posted = 0;
    CHECK(nffi_fast_drain() == 40 && fast_n_posted == 40);
    nffi_wake_stats_get(&ws);
    CHECK(ws.outstanding == 0 && ws.fast_max_batch >= 40 && ws.signals == signals + 1);
    CHECK(!fast_signalled(fd, 0) && nffi_drain(got, 64) == 0);
    for (int i = 0; i < 40; i++) {
        CHECK(fast_posted[i] == &sema[i] && nffi_task_state(ts[i]) == NFFI_TASK_READY);
        CHECK(nffi_task_result(ts[i], NULL, NULL) == i);
        nffi_task_release(ts[i]);
    }

    /* A task without a semaphore (a runtime on the pump): the eventfd drain
     * leaves it DONE for nffi_drain and the pump's socket. */
    t = nffi_task_submit(rt, "", 0, "p", 1, 0, &st);
    ngx_http_lua_ffi_respond(ngx_http_lua_ffi_task_poll(rt), 7, NULL, 0);
    fast_n_posted = 0;
    CHECK(nffi_fast_drain() == 0 && fast_n_posted == 0 && nffi_task_state(t) == NFFI_TASK_DONE);
    CHECK(nffi_drain(got, 64) == 1 && got[0] == t && nffi_task_result(t, NULL, NULL) == 7);
    nffi_task_release(t);

    /* nffi_drain posts a semaphore task itself and never hands it out. */
    t = nffi_task_submit(rt, "", 0, "d", 1, 0, &st);
    CHECK(nffi_task_set_sema(t, &sema[1]) == 0);
    ngx_http_lua_ffi_respond(ngx_http_lua_ffi_task_poll(rt), 0, NULL, 0);
    CHECK(nffi_drain(got, 64) == 0 && fast_n_posted == 1 && fast_posted[0] == &sema[1]);
    CHECK(nffi_task_state(t) == NFFI_TASK_READY);
    nffi_task_release(t);
    nffi_fast_drain();

    /* A waiter that gave up: its semaphore is never posted (it may be reused). */
    fast_n_posted = 0;
    t = nffi_task_submit(rt, "", 0, "a", 1, 0, &st);
    CHECK(nffi_task_set_sema(t, &sema[2]) == 0);
    void *held = ngx_http_lua_ffi_task_poll(rt);
    CHECK(nffi_task_abandon(t) == 0);
    nffi_wake_stats_get(&ws);
    CHECK(ws.outstanding == 0);
    ngx_http_lua_ffi_respond(held, 0, NULL, 0);
    CHECK(nffi_fast_drain() == 0 && fast_n_posted == 0);
    t = nffi_task_submit(rt, "", 0, "a", 1, 0, &st);          /* PENDING: freed at once */
    CHECK(nffi_task_set_sema(t, &sema[3]) == 0 && nffi_task_abandon(t) == 1);
    nffi_wake_stats_get(&ws);
    CHECK(ws.outstanding == 0 && fast_n_posted == 0);

    /* Threads: 4 runtime threads, 2000 waiters, the main thread as the event loop. */
    enum { N = 2000 };
    static char many[N];
    static nffi_task *mt[N];
    struct rthread th[4];
    start_threads(th, 4, rt, 1);
    for (int i = 0; i < N; i++) {
        mt[i] = nffi_task_submit(rt, "", 0, "0123456789", (size_t)(i % 10), 0, &st);
        CHECK(nffi_task_set_sema(mt[i], &many[i]) == 0);
    }
    int total = 0, wakeups = 0;
    int64_t deadline = nffi_now_ns() + 30 * SEC;
    fast_n_posted = 0;
    while (total < N && nffi_now_ns() < deadline) {
        if (fast_signalled(fd, 100)) {
            int k = nffi_fast_drain();
            for (int j = 0; j < k; j++) {
                int i = (int)((char *)fast_posted[j] - many);
                char *rsp;
                size_t len;
                CHECK(nffi_task_result(mt[i], &rsp, &len) == (i % 10) % 5 && len == (size_t)(i % 10));
                CHECK(memcmp(rsp, "0123456789", len) == 0);
                nffi_task_release(mt[i]);
            }
            total += k;
            wakeups++;
            fast_n_posted = 0;
        }
    }
    CHECK(total == N);
    CHECK(wakeups <= total);
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, 4) == N);

    /* The event loop's short poll: calls one after another to a runtime
     * thread; the hook is called while at most 2 waiters are out; a poll that
     * took the token gets the response from the done list with no eventfd
     * signal, one that could not (a signal pending) gets it from the eventfd. */
    {
        rt = new_rt("loop", 0);
        struct rthread lt[1];
        start_threads(lt, 1, rt, 1);
        nffi_fast_set_wait((void *)count_wait_hook);
        nffi_fast_drain();
        nffi_wake_stats_get(&ws);
        uint64_t sig0 = ws.signals, hits0 = ws.loop_hits;
        int polled = 0, ok = 1;
        wait_hooks = 0;
        for (int i = 0; i < 500; i++) {
            fast_n_posted = 0;
            nffi_task *lt_t = nffi_task_submit(rt, "", 0, "0123456789", (size_t)(i % 10), 0, &st);
            ok &= nffi_task_set_sema(lt_t, &many[i]) == 0;
            if (nffi_fast_poll_begin()) {
                polled++;
                int64_t end = nffi_now_ns() + 5 * SEC;
                int k;
                while ((k = nffi_fast_poll(nffi_now_ns() > end)) < 0)
                    nffi__cpu_relax();
                ok &= k == 1;
            } else {
                /* a signal may be stale: a response that pushed while a poll
                 * held the token but signalled after the poll gave it back */
                int k = 0;
                for (int64_t end = nffi_now_ns() + 5 * SEC; k == 0 && nffi_now_ns() < end;)
                    if (fast_signalled(fd, 100))
                        k = nffi_fast_drain();
                ok &= k == 1;
            }
            ok &= fast_n_posted == 1 && fast_posted[0] == &many[i];
            ok &= nffi_task_result(lt_t, NULL, NULL) == (i % 10) % 5;
            nffi_task_release(lt_t);
        }
        CHECK(ok && wait_hooks == 500 && polled > 0);
        nffi_wake_stats_get(&ws);
        CHECK(ws.outstanding == 0 && ws.loop_hits - hits0 == (uint64_t)polled);
        /* the polled ones do not signal (but for that race) */
        CHECK(ws.signals - sig0 < 500);
        if (fast_signalled(fd, 0))
            CHECK(nffi_fast_drain() == 0);
        /* with more than 2 waiters out the hook is not called */
        nffi_task *w3[3];
        for (int i = 0; i < 3; i++) {
            w3[i] = nffi_task_submit(rt, "", 0, "w", 1, 0, &st);
            CHECK(nffi_task_set_sema(w3[i], &many[i]) == 0);
        }
        CHECK(wait_hooks == 502);
        nffi_fast_set_wait(NULL);
        int got3 = 0;
        for (int64_t end = nffi_now_ns() + 5 * SEC; got3 < 3 && nffi_now_ns() < end;)
            if (fast_signalled(fd, 100))
                got3 += nffi_fast_drain();
        CHECK(got3 == 3);
        for (int i = 0; i < 3; i++)
            nffi_task_release(w3[i]);
        nffi_runtime_finish(rt);
        CHECK(join_threads(lt, 1) == 503);
    }

    /* Deferred poller wake-ups: with a kick hook, submits that find the
     * poller asleep call the hook once and wake nobody; nffi_kick_pollers
     * wakes the poller, which then serves all of them. */
    {
        rt = new_rt("kick", 0);
        struct rthread kt[1];
        start_threads(kt, 1, rt, 0);
        wait_sleepers(rt, 1);
        fast_kicks = 0;
        nffi_fast_set_kick((void *)fake_kick);
        nffi_task *kts[8];
        for (int i = 0; i < 8; i++) {
            kts[i] = nffi_task_submit(rt, "", 0, "k", 1, 0, &st);
            CHECK(nffi_task_set_sema(kts[i], &sema[8 + i]) == 0);
        }
        CHECK(fast_kicks == 1);
        usleep(20000);
        nffi_stats ks;
        nffi_runtime_stats(rt, &ks);
        CHECK(ks.depth == 8);                            /* nobody woke the poller */
        /* past the first two, they wait on the stage for the kick */
        CHECK(NFFI_LOAD(&rt->depth) == 2 && rt->staged == 6);
        nffi_kick_pollers();
        fast_n_posted = 0;
        int got_n = 0;
        for (int64_t end = nffi_now_ns() + 10 * SEC; got_n < 8 && nffi_now_ns() < end;)
            if (fast_signalled(fd, 100))
                got_n += nffi_fast_drain();
        CHECK(got_n == 8);
        for (int i = 0; i < 8; i++)
            nffi_task_release(kts[i]);
        /* a hook removed wakes what it had noted */
        wait_sleepers(rt, 1);
        t = nffi_task_submit(rt, "", 0, "k", 1, 0, &st);
        CHECK(nffi_task_set_sema(t, &sema[20]) == 0 && fast_kicks == 2);
        nffi_fast_set_kick(NULL);
        CHECK(wait_posted(fd, 1, 10 * SEC) == 1 && fast_posted[0] == &sema[20]);
        nffi_task_release(t);
        nffi_runtime_finish(rt);
        CHECK(join_threads(kt, 1) == 9);
    }

    /* Staging: with a kick hook, past two live tasks submits wait on the
     * stage until the kick; one abandoned there is freed at once and never
     * served; finish queues what is staged, and it is served. */
    {
        rt = new_rt("stage", 0);
        struct rthread sth[2];
        start_threads(sth, 2, rt, 0);
        nffi_fast_set_kick((void *)fake_kick);
        nffi_task *s5[5];
        for (int i = 0; i < 5; i++) {
            s5[i] = nffi_task_submit(rt, "", 0, "st", 2, 0, &st);
            CHECK(nffi_task_set_sema(s5[i], &sema[24 + i]) == 0);
        }
        CHECK(rt->staged == 3 && !nffi__task_staged(s5[1]) && nffi__task_staged(s5[2]) &&
              nffi__task_staged(s5[4]));
        CHECK(nffi_task_abandon(s5[3]) == 1 && rt->staged == 2 && stats_of(rt).live == 4);
        nffi_kick_pollers();
        CHECK(rt->staged == 0 && rt->stage_head == NULL);
        CHECK(wait_posted(fd, 4, 10 * SEC) == 4);
        int seen = 0;
        for (int i = 0; i < fast_n_posted; i++)
            seen |= 1 << (int)((char *)fast_posted[i] - &sema[24]);
        CHECK(seen == (1 | 2 | 4 | 16));                 /* not the abandoned one */
        for (int i = 0; i < 5; i++)
            if (i != 3)
                nffi_task_release(s5[i]);
        for (int i = 0; i < 3; i++) {
            s5[i] = nffi_task_submit(rt, "", 0, "fin", 3, 0, &st);
            CHECK(nffi_task_set_sema(s5[i], &sema[24 + i]) == 0);
        }
        CHECK(rt->staged == 1 && stats_of(rt).depth + stats_of(rt).in_flight +
                                     (int64_t)stats_of(rt).responded >= 5);
        nffi_runtime_finish(rt);
        CHECK(rt->staged == 0);
        CHECK(join_threads(sth, 2) == 7);
        CHECK(wait_posted(fd, 3, 10 * SEC) == 3);
        for (int i = 0; i < 3; i++)
            nffi_task_release(s5[i]);
        nffi_fast_set_kick(NULL);
    }

    /* The worker takes the handed-back buffers back when its runtime's last
     * live task goes, even one that brought no response. */
    {
        rt = new_rt("idleback", 0);
        static char big2[2048];
        memset(big2, 'g', sizeof(big2));
        nffi_task *ib[3];
        for (int i = 0; i < 3; i++)
            ib[i] = nffi_task_submit(rt, "", 0, big2, sizeof(big2), 0, &st);
        for (int i = 0; i < 3; i++) {
            void *p = ngx_http_lua_ffi_task_poll(rt);
            char *r = NULL;
            if (i < 2) {
                r = malloc(sizeof(big2));
                memcpy(r, big2, sizeof(big2));
            }
            ngx_http_lua_ffi_respond(p, 0, r, i < 2 ? (int)sizeof(big2) : 0);
        }
        nffi_fast_drain();
        CHECK(nffi_drain(got, 64) == 3);
        nffi_task_release(ib[0]);
        nffi_task_release(ib[1]);
        CHECK(rt->freeback_bytes == 2 * (int64_t)sizeof(big2));
        nffi_task_release(ib[2]);
        CHECK(rt->freeback_bytes == 0 && rt->freeback == NULL);
        nffi_runtime_finish(rt);
    }

    /* Enqueue stamps never decrease in id order, across runtimes, though a
     * staged task the sampling left out takes the last stamp given. */
    {
        nffi_runtime *ra = new_rt("stampa", 0), *rb = new_rt("stampb", 0);
        nffi_fast_set_kick((void *)fake_kick);
        nffi_task *sts[40];
        for (int i = 0; i < 40; i++) {
            sts[i] = nffi_task_submit(i % 2 ? rb : ra, "", 0, "s", 1, 0, &st);
            if (i % 7 == 0)
                usleep(50);
        }
        CHECK(ra->staged > 0 && rb->staged > 0);
        static nffi_task_info sinfo[64];
        int n = nffi_tasks(0, sinfo, 64), mono = 1;
        for (int i = 1; i < n; i++)
            mono &= sinfo[i].id > sinfo[i - 1].id && sinfo[i].t_enqueued >= sinfo[i - 1].t_enqueued;
        CHECK(n >= 40 && mono && (!nffi_instrumented() || sinfo[0].t_enqueued > 0));
        nffi_kick_pollers();
        for (int i = 0; i < 40; i++)
            CHECK(nffi_task_abandon(sts[i]) == 1);
        nffi_fast_set_kick(NULL);
        nffi_runtime_finish(ra);
        nffi_runtime_finish(rb);
    }

    /* A spinner that lost its CPU (here: spinning held, nobody spinning) does
     * not hold a batch: the kick wakes a sleeper for the tasks beyond the one
     * a spinner would take, and the sleepers wake each other for the rest. */
    {
        rt = new_rt("lostspin", 0);
        struct rthread lth[2];
        start_threads(lth, 2, rt, 0);
        wait_sleepers(rt, 2);
        __atomic_store_n(&rt->spinning, 1, __ATOMIC_SEQ_CST);
        nffi_fast_set_kick((void *)fake_kick);
        nffi_task *l8[8];
        for (int i = 0; i < 8; i++) {
            l8[i] = nffi_task_submit(rt, "", 0, "ls", 2, 0, &st);
            CHECK(nffi_task_set_sema(l8[i], &sema[40 + i]) == 0);
        }
        nffi_kick_pollers();
        CHECK(wait_posted(fd, 8, 2 * SEC) == 8);
        for (int i = 0; i < 8; i++)
            nffi_task_release(l8[i]);
        /* Held with a stale heartbeat (a spinner off its CPU), even a task
         * the spinner would take gets a sleeper: two queued at once (live),
         * then one staged alone. */
        __atomic_store_n(&rt->spin_beat, 0, __ATOMIC_SEQ_CST);
        wait_sleepers(rt, 2);
        for (int i = 0; i < 3; i++) {
            l8[i] = nffi_task_submit(rt, "", 0, "l1", 2, 0, &st);
            CHECK(nffi_task_set_sema(l8[i], &sema[40 + i]) == 0);
            CHECK(nffi__task_staged(l8[i]) == (i == 2));
            nffi_kick_pollers();
            CHECK(wait_posted(fd, 1, 2 * SEC) == 1 && fast_posted[0] == &sema[40 + i]);
        }
        for (int i = 0; i < 3; i++)
            nffi_task_release(l8[i]);
        __atomic_store_n(&rt->spinning, 0, __ATOMIC_SEQ_CST);
        nffi_fast_set_kick(NULL);
        nffi_runtime_finish(rt);
        CHECK(join_threads(lth, 2) == 11);
    }

    /* Response buffers of 1 KiB or more go back to a poller, which frees them
     * when it next polls (here: woken for the next task); the worker frees
     * them itself when its runtime has nothing live, past the cap, and after
     * finish. */
    {
        rt = new_rt("freeback", 0);
        struct rthread fbt[1];
        start_threads(fbt, 1, rt, 0);
        static char big[4096];
        memset(big, 'f', sizeof(big));
        nffi_task *fb[3];
        int served = 0;
#define FB_CALL(i, len)                                                                   \
    do {                                                                                  \
        fb[i] = nffi_task_submit(rt, "", 0, big, (len), 0, &st);                          \
        CHECK(nffi_task_set_sema(fb[i], &sema[30 + (i)]) == 0);                           \
        char *rsp_ = NULL;                                                                \
        size_t rsp_len_ = 0;                                                              \
        CHECK(wait_posted(fd, 1, 10 * SEC) == 1 &&                                        \
              nffi_task_result(fb[i], &rsp_, &rsp_len_) == (int)((len) % 5));             \
        CHECK(rsp_len_ == (len) && memcmp(rsp_, big, (len)) == 0);                        \
        served++;                                                                         \
    } while (0)
#define FB_HELD() __atomic_load_n(&rt->freeback_bytes, __ATOMIC_ACQUIRE)
        FB_CALL(0, sizeof(big));
        FB_CALL(1, sizeof(big));
        wait_sleepers(rt, 1);
        nffi_task_release(fb[0]);                       /* one still live: handed back */
        CHECK(FB_HELD() == (int64_t)sizeof(big) && rt->freeback != NULL);
        FB_CALL(2, 10);                                 /* the poller wakes and frees it */
        CHECK(FB_HELD() == 0 && rt->freeback == NULL);
        nffi_task_release(fb[2]);                       /* small: the worker frees */
        CHECK(FB_HELD() == 0);
        FB_CALL(0, sizeof(big));
        nffi_task_release(fb[0]);
        CHECK(FB_HELD() == (int64_t)sizeof(big));
        nffi_task_release(fb[1]);                       /* nothing live: all freed here */
        CHECK(FB_HELD() == 0 && rt->freeback == NULL);
        FB_CALL(0, sizeof(big));
        FB_CALL(1, sizeof(big));
        nffi_runtime_finish(rt);
        CHECK(join_threads(fbt, 1) == served);
        nffi_task_release(fb[0]);                       /* finished: the worker frees */
        CHECK(FB_HELD() == 0 && rt->freeback == NULL);
        nffi_task_release(fb[1]);
#undef FB_CALL
#undef FB_HELD
    }

    /* Remove: the outstanding waiters are woken without a result, later
     * responses signal the socket and reach nffi_drain. */
    rt = new_rt("fast2", 0);
    t = nffi_task_submit(rt, "", 0, "r", 1, 0, &st);
    CHECK(nffi_task_set_sema(t, &sema[4]) == 0);
    held = ngx_http_lua_ffi_task_poll(rt);
    fast_n_posted = 0;
    nffi_fast_remove();
    nffi_wake_stats_get(&ws);
    CHECK(fast_n_posted == 1 && fast_posted[0] == &sema[4] && ws.fast_on == 0 && ws.outstanding == 0);
    CHECK(nffi_task_state(t) == NFFI_TASK_POLLED);
    ngx_http_lua_ffi_respond(held, 3, NULL, 0);
    CHECK(!fast_signalled(fd, 0));
    CHECK(drain_wait(got, 1, SEC) == 1 && got[0] == t && nffi_task_result(t, NULL, NULL) == 3);
    nffi_task_release(t);
    nffi_fast_remove();                                     /* idempotent */
    CHECK(fast_n_posted == 1);
}

/* ---------- wake socket ---------- */

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Bytes readable within timeout_ms (all of them, without blocking after). */
static int read_bytes(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    char buf[256];
    int total = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r <= 0)
            break;
        total += (int)r;
    }
    return total;
}

static void test_wake(void)
{
    char path[256];
    nffi_task *got[64];
    CHECK(nffi_wake_listen(path, 10) == -ENAMETOOLONG);

    /* A peer that never connects cannot hang the worker; the path is removed. */
    int lfd = nffi_wake_listen(path, sizeof(path));
    CHECK(lfd >= 0);
    CHECK(nffi_wake_accept(lfd, path) == -ETIMEDOUT && access(path, F_OK) != 0);

    /* Another process is refused. */
    lfd = nffi_wake_listen(path, sizeof(path));
    pid_t child = fork();
    if (child == 0) {
        int c = connect_to(path);
        sleep(5);
        _exit(c >= 0 ? 0 : 1);
    }
    usleep(100000);
    CHECK(nffi_wake_accept(lfd, path) == -EPERM);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    lfd = nffi_wake_listen(path, sizeof(path));
    CHECK(lfd >= 0 && strstr(path, "/nffi-wake-") != NULL && strstr(path, "/w.sock") != NULL);
    struct stat sb;
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600 && S_ISSOCK(sb.st_mode));

    /* A response before the socket exists still produces a byte at accept. */
    nffi_drain(got, 64);
    nffi_runtime *rt = new_rt("wake", 0);
    int st;
    nffi_task *t = nffi_task_submit(rt, "", 0, "early", 5, 0, &st);
    ngx_http_lua_ffi_respond(ngx_http_lua_ffi_task_poll(rt), 0, NULL, 0);
    int cfd = connect_to(path);
    CHECK(cfd >= 0);
    CHECK(nffi_wake_accept(lfd, path) == 0);
    CHECK(access(path, F_OK) != 0 && access(dir, F_OK) != 0);
    CHECK(read_bytes(cfd, 1000) == 1);
    CHECK(nffi_drain(got, 64) == 1 && got[0] == t);
    nffi_task_release(t);

    /* Coalescing: ten responses, one byte, until the next drain. */
    nffi_task *ts[10];
    for (int i = 0; i < 10; i++)
        ts[i] = nffi_task_submit(rt, "", 0, "c", 1, 0, &st);
    for (int i = 0; i < 10; i++)
        ngx_http_lua_ffi_respond(ngx_http_lua_ffi_task_poll(rt), i, NULL, 0);
    CHECK(read_bytes(cfd, 1000) == 1);
    CHECK(read_bytes(cfd, 20) == 0);
    int n = nffi_drain(got, 64);
    CHECK(n == 10);
    for (int i = 0; i < n; i++) {
        CHECK(got[i] == ts[i] && nffi_task_result(got[i], NULL, NULL) == i);
        nffi_task_release(got[i]);
    }
    CHECK(read_bytes(cfd, 20) == 0);

    /* Kick: one byte while none is pending. */
    nffi_wake_kick();
    nffi_wake_kick();
    CHECK(read_bytes(cfd, 1000) == 1);
    CHECK(nffi_drain(got, 64) == 0);
    nffi_wake_kick();
    CHECK(read_bytes(cfd, 1000) == 1);
    nffi_drain(got, 64);

    /* A child forked after load must not write into our socket. */
    child = fork();
    if (child == 0) {
        nffi_wake_kick();
        _exit(0);
    }
    waitpid(child, NULL, 0);
    CHECK(read_bytes(cfd, 50) == 0);

    /* Pump emulation: sleep on the socket only, drain in batches until short.
     * Small rounds keep the pump going idle while responses race with its
     * drains; a lost wake-up shows up as a 3 s silence with work left. */
    enum { ROUNDS = 3000, NT = 4 };
    struct rthread th[NT];
    start_threads(th, NT, rt, 1);
    unsigned seed = 11;
    int done = 0, lost = 0, ok = 1, wakes = 0, N = 0;
    for (int r = 0; r < ROUNDS && !lost; r++) {
        int batch = 1 + rand_r(&seed) % 8;
        for (int i = 0; i < batch; i++)
            ok &= nffi_task_submit(rt, "", 0, "stress", 6, 0, &st) != NULL;
        N += batch;
        while (done < N) {
            if (read_bytes(cfd, 3000) == 0) {
                lost = 1;
                break;
            }
            wakes++;
            int k;
            do {
                k = nffi_drain(got, 64);
                for (int i = 0; i < k; i++) {
                    char *rsp;
                    size_t rl;
                    ok &= nffi_task_result(got[i], &rsp, &rl) == 1 && rl == 6;
                    nffi_task_release(got[i]);
                }
                done += k;
            } while (k == 64);
        }
    }
    CHECK(ok && !lost && done == N);
    printf("wake: %d tasks delivered on %d wake-ups\n", done, wakes);
    nffi_runtime_finish(rt);
    CHECK(join_threads(th, NT) == N);
    CHECK(stats_of(rt).live == 0);
    close(cfd);
}

/* ---------- example runtimes ---------- */

typedef int (*init_fn)(char *cfg, void *tq);

static nffi_runtime *load_example(const char *name, const char *sym, const char *cfg)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/libnffi_%s.so", examples_dir, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return NULL;
    }
    init_fn init = (init_fn)(uintptr_t)dlsym(h, sym);
    if (init == NULL)
        return NULL;
    nffi_runtime *rt = new_rt(name, 0);
    char *c = cfg ? strdup(cfg) : NULL;
    int rc = init(c, rt);
    free(c);                                             /* the caller owns cfg */
    return rc == 0 ? rt : NULL;
}

/* One request, waited for by draining. Returns rc; *out is a copy. */
static int call(nffi_runtime *rt, const char *req, size_t len, char **out, size_t *out_len)
{
    int st;
    nffi_task *t = nffi_task_submit(rt, "", 0, req, len, 0, &st), *got;
    *out = NULL;
    *out_len = 0;
    if (t == NULL || drain_wait(&got, 1, 10 * SEC) != 1 || got != t)
        return -1000;
    char *rsp;
    int rc = nffi_task_result(t, &rsp, out_len);
    if (rsp != NULL) {
        *out = malloc(*out_len + 1);
        memcpy(*out, rsp, *out_len + 1);
    }
    nffi_task_release(t);
    return rc;
}

static void test_examples(void)
{
    char *out;
    size_t ol;
    nffi_runtime *echo = load_example("echo", "libffi_init", NULL);
    CHECK(echo != NULL);
    if (echo != NULL) {
        CHECK(call(echo, "hello", 5, &out, &ol) == 0 && ol == 5 && memcmp(out, "hello", 5) == 0);
        free(out);
        CHECK(call(echo, "", 0, &out, &ol) == 0 && out != NULL && ol == 0);
        free(out);
        unsigned seed = 3;
        size_t n = 1 << 20;
        char *big = random_bytes(n, &seed);
        CHECK(call(echo, big, n, &out, &ol) == 0 && ol == n && memcmp(out, big, n) == 0);
        free(out);
        free(big);
        nffi_runtime_finish(echo);
    }

    nffi_runtime *nb = load_example("nb_echo", "lib_nonblocking_ffi_init", NULL);
    CHECK(nb != NULL);
    if (nb != NULL) {
        CHECK(call(nb, "abc\0def", 7, &out, &ol) == 0 && ol == 7 && memcmp(out, "abc\0def", 7) == 0);
        free(out);
        nffi_runtime_finish(nb);
    }

    nffi_runtime *fail = load_example("fail", "libffi_init", "7");
    nffi_runtime *fail1 = load_example("fail", "libffi_init", NULL);
    CHECK(fail != NULL && fail1 != NULL);
    if (fail != NULL && fail1 != NULL) {
        CHECK(call(fail, "boom", 4, &out, &ol) == 7 && ol == 11 && memcmp(out, "error: boom", 11) == 0);
        free(out);
        CHECK(call(fail1, "x", 1, &out, &ol) == 1 && ol == 8 && strcmp(out, "error: x") == 0);
        free(out);
        nffi_runtime_finish(fail);
        nffi_runtime_finish(fail1);
    }

    nffi_runtime *mt = load_example("echo_mt", "libffi_init", "3");
    CHECK(mt != NULL);
    if (mt != NULL) {
        enum { N = 2000 };
        static nffi_task *t[N], *got[N];
        int st, ok = 1;
        for (int i = 0; i < N; i++) {
            char req[16];
            int n = snprintf(req, sizeof(req), "%d", i);
            t[i] = nffi_task_submit(mt, "", 0, req, (size_t)n, (uint32_t)i, &st);
        }
        CHECK(drain_wait(got, N, 30 * SEC) == N);
        for (int i = 0; i < N; i++) {
            char *rsp, req[16];
            size_t rl;
            int n = snprintf(req, sizeof(req), "%d", i);
            ok &= nffi_task_state(t[i]) == NFFI_TASK_READY &&
                  nffi_task_result(t[i], &rsp, &rl) == 0 && rl == (size_t)n && memcmp(rsp, req, rl) == 0;
            nffi_task_release(t[i]);
        }
        CHECK(ok);
        nffi_runtime_finish(mt);
    }

    nffi_runtime *slow = load_example("slow", "libffi_init", "20");
    CHECK(slow != NULL);
    if (slow != NULL) {
        int64_t t0 = nffi_now_ns();
        CHECK(call(slow, "x", 1, &out, &ol) == 0 && ol == 1 && out[0] == 'x');
        CHECK(nffi_now_ns() - t0 >= 20 * 1000000LL);
        free(out);
        CHECK(call(slow, "delay=5;abc", 11, &out, &ol) == 0 && ol == 3 && memcmp(out, "abc", 3) == 0);
        free(out);
        CHECK(call(slow, "delay=0;", 8, &out, &ol) == 0 && ol == 0);
        free(out);

        /* Later-submitted, earlier-due comes back first. */
        int st;
        nffi_task *a = nffi_task_submit(slow, "", 0, "delay=300;a", 11, 0, &st);
        nffi_task *b = nffi_task_submit(slow, "", 0, "delay=10;b", 10, 0, &st);
        nffi_task *got2[2];
        CHECK(drain_wait(got2, 2, 10 * SEC) == 2 && got2[0] == b && got2[1] == a);
        nffi_task_release(a);
        nffi_task_release(b);

        /* Thousands of concurrent delays overlap instead of queueing up. */
        enum { N = 3000 };
        static nffi_task *got[N];
        t0 = nffi_now_ns();
        for (int i = 0; i < N; i++)
            nffi_task_submit(slow, "", 0, "delay=200;zz", 12, 0, &st);
        CHECK(drain_wait(got, N, 20 * SEC) == N);
        int64_t el = nffi_now_ns() - t0;
        printf("slow: %d tasks of 200 ms took %.0f ms\n", N, (double)el / 1e6);
        CHECK(el >= 200 * 1000000LL && el < 5 * SEC);
        int ok = 1;
        for (int i = 0; i < N; i++) {
            char *rsp;
            size_t rl;
            ok &= nffi_task_result(got[i], &rsp, &rl) == 0 && rl == 2 && memcmp(rsp, "zz", 2) == 0;
            nffi_task_release(got[i]);
        }
        CHECK(ok);
        /* A gate holds the poller (later tasks stay pending) until "open" reaches
         * another runtime of the library. */
        nffi_runtime *ctl = load_example("slow", "libffi_init", "0");
        CHECK(ctl != NULL);
        if (ctl != NULL) {
            nffi_task *g = nffi_task_submit(slow, "", 0, "gate=30000;g", 12, 0, &st);
            nffi_task *behind = nffi_task_submit(slow, "", 0, "delay=0;b", 9, 0, &st);
            usleep(50000);
            CHECK(nffi_task_state(g) == NFFI_TASK_POLLED && nffi_task_state(behind) == NFFI_TASK_PENDING);
            t0 = nffi_now_ns();
            nffi_task *o = nffi_task_submit(ctl, "", 0, "open;o", 6, 0, &st);
            /* the open answer races the two it lets go: any order */
            int n = drain_wait(got, 3, 10 * SEC), seen = 0;
            for (int k = 0; k < n; k++)
                seen |= got[k] == g ? 1 : got[k] == behind ? 2 : got[k] == o ? 4 : 8;
            CHECK(n == 3 && seen == 7 && nffi_now_ns() - t0 < 5 * SEC);
            char *rsp;
            CHECK(nffi_task_result(o, &rsp, &ol) == 0 && ol == 1 && rsp[0] == 'o');
            CHECK(nffi_task_result(behind, &rsp, &ol) == 0 && ol == 1 && rsp[0] == 'b');
            nffi_task_release(o);
            nffi_task_release(g);
            nffi_task_release(behind);
            nffi_runtime_finish(ctl);
        }
        /* Pending delayed tasks are still answered after finish. */
        nffi_task *late = nffi_task_submit(slow, "", 0, "delay=50;end", 12, 0, &st);
        nffi_runtime_finish(slow);
        CHECK(drain_wait(got, 1, 10 * SEC) == 1 && got[0] == late);
        nffi_task_release(late);
        CHECK(stats_of(slow).live == 0);
    }
    usleep(100000);                                      /* let detached threads exit */
}

/* Hardware watchpoints (src/watch.c). What the machine does decides what is
 * asserted, never whether: nffi_watch_probe says whether traps come (1),
 * the event opens and no trap ever comes (0: seen on an AMD EPYC VM), or
 * perf_event_open is refused (-errno). Delivered: one trap per enable, on the
 * watched 4 bytes only, reads and writes, before the next statement, and the
 * health check catches traps that went astray. Not delivered: the events
 * open and enable cleanly and nothing traps, which is what the agent's self-
 * check detects. Refused: the refusal is clean. Everywhere: the test
 * switches (fault, emulated trap) behave. */
static volatile uint32_t watched_words[4] __attribute__((aligned(16)));
static volatile int watch_trap_calls;
static void count_watch_trap(int late)
{
    watch_trap_calls += late ? 100 : 1;     /* a late trap would show */
}

static void test_watch_switches(uintptr_t at)
{
    char why[160];
    int calls0 = watch_trap_calls;
    uint32_t sink = 0;
    nffi_watch_fault(1);
    CHECK(nffi__watch_set(&at, 1) == 0 && nffi__watch_enable() == 0 && nffi__watch_enabled());
    sink += watched_words[1];
    CHECK(watch_trap_calls == calls0);              /* the fault: never a trap */
    CHECK(nffi_watch_emulate_trap() == 1 && watch_trap_calls == calls0 + 1);
    CHECK(!nffi__watch_enabled() && nffi_watch_emulate_trap() == 0);
    CHECK(nffi__watch_health(why, sizeof(why)) == 0);
    nffi__watch_close();
    nffi_watch_fault(0);
    watched_words[0] = sink;
}

static void test_watch_delivered(uintptr_t at)
{
    char why[160];
    uint32_t sink = 0;
    CHECK(nffi__watch_set(&at, 1) == 0);
    uint64_t traps0 = nffi_watch_traps();
    sink += watched_words[1];
    CHECK(watch_trap_calls == 0);                   /* set disabled */
    CHECK(nffi__watch_enable() == 0 && nffi__watch_enabled());
    sink += watched_words[0] + watched_words[2];
    CHECK(watch_trap_calls == 0);                   /* neighbours are not watched */
    sink += watched_words[1];
    CHECK(watch_trap_calls == 1);                   /* synchronous: before the next statement */
    CHECK(!nffi__watch_enabled());                  /* and off after one trap */
    sink += watched_words[1];
    CHECK(watch_trap_calls == 1);
    CHECK(nffi__watch_enable() == 0);
    watched_words[1] = sink;
    CHECK(watch_trap_calls == 2 && nffi_watch_traps() == traps0 + 2);   /* writes too */
    CHECK(nffi__watch_health(why, sizeof(why)) == 0);
    /* a trap that never reaches us (ignored here, as a tracer would swallow
     * it) shows as an event count above the traps we saw */
    struct sigaction ours, ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    CHECK(sigaction(SIGTRAP, &ign, &ours) == 0);
    CHECK(nffi__watch_health(why, sizeof(why)) == -1 && strstr(why, "another SIGTRAP handler"));
    CHECK(nffi__watch_enable() == 0);
    sink += watched_words[1];
    CHECK(sigaction(SIGTRAP, &ours, NULL) == 0 && watch_trap_calls == 2);
    CHECK(nffi__watch_health(why, sizeof(why)) == -1 && strstr(why, "agent saw 2 traps"));
    nffi__watch_close();
    watched_words[0] = sink;
}

static void test_watch(void)
{
    uintptr_t at = (uintptr_t)&watched_words[1];
    char why[160];
    sigset_t trap, old;
    nffi__watch_on_trap(count_watch_trap);
    int machine = nffi_watch_probe();
    int rc = nffi__watch_set(&at, 1);
    if (machine < 0) {
        printf("watch: perf_event_open refused (%s): the agent keeps the call hook\n", strerror(-machine));
        CHECK(rc == machine);
        CHECK(rc == -EACCES || rc == -EPERM || rc == -ENOENT || rc == -ENOSYS || rc == -EOPNOTSUPP);
        CHECK(nffi__watch_count() == 0 && nffi__watch_enable() == -ENOENT);
        CHECK(nffi_watch_emulate_trap() == 0);
        nffi__watch_on_trap(NULL);
        return;
    }
    CHECK(rc == 0 && nffi__watch_count() == 1);
    CHECK(nffi_watch_probe() == -EBUSY);            /* never over events in use */
    nffi__watch_close();
    if (machine == 1) {
        printf("watch: traps delivered on this machine\n");
        test_watch_delivered(at);
    } else {
        printf("watch: the event opens but no trap is delivered on this machine: the agent keeps the call hook\n");
        uint32_t sink = 0;
        CHECK(machine == 0);
        CHECK(nffi__watch_set(&at, 1) == 0 && nffi__watch_enable() == 0);
        sink += watched_words[1];
        watched_words[1] = sink;
        CHECK(watch_trap_calls == 0);
        nffi__watch_close();
    }
    test_watch_switches(at);
    /* what every machine can show of the health check: a blocked SIGTRAP */
    CHECK(nffi__watch_set(&at, 1) == 0);
    sigemptyset(&trap);
    sigaddset(&trap, SIGTRAP);
    CHECK(pthread_sigmask(SIG_BLOCK, &trap, &old) == 0);
    CHECK(nffi__watch_health(why, sizeof(why)) == -1 && strstr(why, "SIGTRAP is blocked"));
    CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
    CHECK(nffi__watch_health(why, sizeof(why)) == 0);
    uintptr_t odd = at + 1;
    CHECK(nffi__watch_set(&odd, 1) == -EINVAL && nffi__watch_count() == 0);
    uintptr_t five[5] = { at, at, at, at, at };
    CHECK(nffi__watch_set(five, 5) == -ENOSPC);
    CHECK(nffi__watch_set(&at, 1) == 0 && nffi__watch_count() == 1);
    nffi__watch_close();
    CHECK(nffi__watch_count() == 0 && !nffi__watch_enabled());
    nffi__watch_on_trap(NULL);
}

/* What lua_close does to an ffi.load'ed runtime at worker exit (its last
 * dlclose) while the runtime's threads still run its code: a pinned library
 * stays mapped, an unpinned one goes. */
static void test_pin(void)
{
    /* a copy: the examples were loaded (and never closed) by test_examples */
    char src[512], path[64], cmd[640];
    snprintf(src, sizeof(src), "%s/libnffi_echo.so", examples_dir);
    snprintf(path, sizeof(path), "/tmp/nffi_pin_test_%d.so", (int)getpid());
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, path);
    CHECK(system(cmd) == 0);
    CHECK(nffi_pin_library(path) == -1);                 /* not loaded: nothing to pin */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    CHECK(dlclose(h) == 0);
    CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL); /* unpinned: unmapped */
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    CHECK(nffi_pin_library(path) == 0);
    CHECK(dlclose(h) == 0);
    void *again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    CHECK(again != NULL);                                /* pinned: still there */
    CHECK(nffi_pin_library(NULL) == -1);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        examples_dir = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("libnffi %s, instrumented=%d\n", nffi_version(), nffi_instrumented());
    test_basics();
    test_wake();            /* forks: run before long-lived threads exist */
    test_hist();
    test_watch();
    test_queue_full();
    test_abandon();
    test_borrow();
    test_finish();
    test_snapshot();
    test_registry();
    test_roundtrip();
    test_opt_out();
    test_lat_gap();
    test_lat_staged();
    test_spin_paths();
    test_spin();
    test_examples();
    test_pin();
    test_fast();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
