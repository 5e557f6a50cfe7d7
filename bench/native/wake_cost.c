/*
 * Sequential calls (one in flight) through libnffi's eventfd path without
 * nginx: this thread plays the worker (submit, sleep in epoll_wait on the
 * eventfd, nffi_fast_drain, result, release) and one echo poller serves the
 * runtime. Two runtimes side by side in one process, measured in turns:
 * pollers that spin adaptively (libnffi's default) and pollers that never
 * spin (nffi_runtime_set_poll_spin(rt, 0)). What it tells: whether a poller
 * that is still spinning when the next call comes saves the futex wake-up,
 * in call latency (p50, p99, mean), the queue part of it (submit to poll,
 * from the runtime's own stats) and CPU of the process per call.
 *
 * Usage: wake_cost [calls=20000] [repeats=7]
 * Exits 1 when a response is not the request's bytes or the eventfd path
 * did not install (then it measured nothing).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include "nffi.h"

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* stands in for ngx_http_lua_ffi_sema_post: the "semaphore" is an int */
static int fake_post(void *sema, int n)
{
    *(int *)sema += n;
    return 0;
}

static void *echo_poller(void *tq)
{
    void *task;
    while ((task = ngx_http_lua_ffi_task_poll(tq)) != NULL) {
        int len = 0;
        char *req = ngx_http_lua_ffi_get_req(task, &len);
        char *rsp = malloc((size_t)len + 1);
        memcpy(rsp, req, (size_t)len + 1);
        ngx_http_lua_ffi_respond(task, 0, rsp, len);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double p50_us, p99_us, mean_us, queue_us, cpu_us;
} result;

static result run(nffi_runtime *rt, int ep, long calls, int64_t *lat)
{
    static const char payload[64] = "sequential call, one in flight, through the eventfd path....";
    nffi_stats s0, s1;
    nffi_runtime_stats(rt, &s0);
    int64_t c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), sum = 0;
    for (long i = 0; i < calls; i++) {
        int st, sema = 0;
        int64_t t0 = clock_ns(CLOCK_MONOTONIC);
        nffi_task *t = nffi_task_submit(rt, "echo", 4, payload, sizeof(payload), 1, &st);
        if (t == NULL || nffi_task_set_sema(t, &sema) != 0) {
            fprintf(stderr, "wake_cost: submit failed (%d)\n", st);
            exit(1);
        }
        while (sema == 0) {
            struct epoll_event ev;
            if (epoll_wait(ep, &ev, 1, 1000) == 1)
                nffi_fast_drain();
        }
        char *rsp;
        size_t len;
        if (nffi_task_result(t, &rsp, &len) != 0 || len != sizeof(payload) ||
            memcmp(rsp, payload, len) != 0) {
            fprintf(stderr, "wake_cost: a response is not its request\n");
            exit(1);
        }
        nffi_task_release(t);
        lat[i] = clock_ns(CLOCK_MONOTONIC) - t0;
        sum += lat[i];
    }
    result r;
    r.cpu_us = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e3 / (double)calls;
    nffi_runtime_stats(rt, &s1);
    uint64_t n = s1.lat_count[NFFI_LAT_QUEUE] - s0.lat_count[NFFI_LAT_QUEUE];
    r.queue_us = n ? (double)(s1.lat_sum_ns[NFFI_LAT_QUEUE] - s0.lat_sum_ns[NFFI_LAT_QUEUE]) / 1e3 / (double)n : 0;
    qsort(lat, (size_t)calls, sizeof(*lat), cmp_i64);
    r.p50_us = (double)lat[calls / 2] / 1e3;
    r.p99_us = (double)lat[calls * 99 / 100] / 1e3;
    r.mean_us = (double)sum / 1e3 / (double)calls;
    return r;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 20000;
    int repeats = argc > 2 ? atoi(argv[2]) : 7;
    if (calls < 100 || repeats < 1 || repeats > 64) {
        fprintf(stderr, "usage: wake_cost [calls >= 100] [repeats 1..64]\n");
        return 2;
    }
    int fd = nffi_fast_install((void *)fake_post);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    if (fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fprintf(stderr, "wake_cost: the eventfd path did not install (%d)\n", fd);
        return 1;
    }
    const char *names[2] = {"pollers spin adaptively (default)", "pollers never spin"};
    nffi_runtime *rt[2] = {nffi_runtime_new("adaptive", 0), nffi_runtime_new("nospin", 0)};
    nffi_runtime_set_poll_spin(rt[1], 0);
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&th[k], NULL, echo_poller, rt[k]);
    int64_t *lat = malloc(sizeof(*lat) * (size_t)calls);
    run(rt[0], ep, calls / 10, lat);    /* warm */
    run(rt[1], ep, calls / 10, lat);
    static result r[2][64];
    for (int i = 0; i < repeats; i++)
        for (int j = 0; j < 2; j++) {
            int k = (i & 1) ? 1 - j : j;    /* alternate which goes first */
            r[k][i] = run(rt[k], ep, calls, lat);
        }
    printf("wake_cost: %ld sequential calls a repeat, %d repeats; median (min..max) over repeats, us\n",
           calls, repeats);
    for (int k = 0; k < 2; k++) {
        double v[5][64];
        for (int i = 0; i < repeats; i++) {
            v[0][i] = r[k][i].p50_us;
            v[1][i] = r[k][i].p99_us;
            v[2][i] = r[k][i].mean_us;
            v[3][i] = r[k][i].queue_us;
            v[4][i] = r[k][i].cpu_us;
        }
        printf("%-34s", names[k]);
        const char *what[5] = {"p50", "p99", "mean", "queue", "cpu/call"};
        for (int m = 0; m < 5; m++) {
            qsort(v[m], (size_t)repeats, sizeof(double), cmp_double);
            printf(" %s %.1f (%.1f..%.1f)", what[m], v[m][repeats / 2], v[m][0], v[m][repeats - 1]);
        }
        printf("\n");
    }
    for (int k = 0; k < 2; k++)
        nffi_runtime_finish(rt[k]);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    free(lat);
    return 0;
}
