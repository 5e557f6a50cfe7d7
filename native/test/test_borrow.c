/* Borrowed requests (src/borrow.c), linked into test_nffi: the poller copies
 * the caller's bytes, the caller learns when an abandoned task that still held
 * them is freed, and nffi_borrow_quiesce copies what no poller took before the
 * caller's memory goes. The main thread plays the worker. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nffi.h"
#include "nffi_internal.h"
#include "check.h"

/* runtimes are never freed: kept reachable for LSan (not static, or the
 * store is optimized away) */
nffi_runtime *test_borrow_rt, *test_borrow_rt2;
enum { SZ0 = 300 };

static int freed_ids(uint64_t *out, int max)
{
    int n = 0, k;
    while (n < max && (k = nffi_borrow_freed(out + n, max - n)) > 0)
        n += k;
    return n;
}

static int drain_one(nffi_task **got)
{
    for (int i = 0; i < 20000; i++) {
        if (nffi_drain(got, 1) == 1)
            return 1;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int drain_none(void)
{
    nffi_task *got[1];
    int n = 0;
    for (int i = 0; i < 200; i++) {
        n += nffi_drain(got, 1);
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return n == 0;
}

static void no_kick(void)
{
}

struct echo_th {
    nffi_runtime *rt;
    pthread_t th;
};

static void *echo_loop(void *arg)
{
    struct echo_th *e = arg;
    void *task;
    while ((task = ngx_http_lua_ffi_task_poll(e->rt)) != NULL) {
        int len;
        char *req = ngx_http_lua_ffi_get_req(task, &len);
        char *rsp = malloc((size_t)len + 1);
        memcpy(rsp, req, (size_t)len);
        ngx_http_lua_ffi_respond(task, 0, rsp, len);
    }
    return NULL;
}

/* The caller's memory goes (the worker's Lua state closing) with borrowed
 * tasks queued, staged, and being copied by pollers that run meanwhile: every
 * runtime must still read the bytes it was sent (ASan: none from freed ones). */
static void quiesce_cases(nffi_runtime *rt)
{
    int st, len;
    nffi_task *got[1];
    CHECK(nffi_borrow_quiesce() == 0);          /* nothing borrowed: nothing to do */

    /* queued, no poller running */
    enum { Q = 3 };
    char *bufs[Q];
    nffi_task *q[Q];
    for (int i = 0; i < Q; i++) {
        bufs[i] = malloc(300);
        memset(bufs[i], 'a' + i, 300);
        q[i] = nffi_task_submit_borrowed(rt, "m", 1, bufs[i], 300, 0, &st);
    }
    CHECK(nffi_borrow_quiesce() == 0);
    for (int i = 0; i < Q; i++)
        free(bufs[i]);
    for (int i = 0; i < Q; i++) {
        void *p = ngx_http_lua_ffi_task_poll(rt);
        char *req = ngx_http_lua_ffi_get_req(p, &len);
        CHECK(p == q[i] && len == 300 && req[0] == 'a' + i && req[299] == 'a' + i && req[300] == '\0');
        ngx_http_lua_ffi_respond(p, 0, NULL, 0);
        CHECK(drain_one(got) && got[0] == q[i]);
        nffi_task_release(got[0]);
    }

    /* staged (the worker's own list until the turn's kick) */
    nffi_fast_set_kick((void *)no_kick);
    for (int i = 0; i < Q; i++) {
        bufs[i] = malloc(300);
        memset(bufs[i], 'k' + i, 300);
        q[i] = nffi_task_submit_borrowed(rt, "m", 1, bufs[i], 300, 0, &st);
    }
    CHECK(rt->staged > 0);
    CHECK(nffi_borrow_quiesce() == 0);
    for (int i = 0; i < Q; i++)
        free(bufs[i]);
    nffi_fast_set_kick(NULL);                   /* the stage joins the queue */
    for (int i = 0; i < Q; i++) {
        void *p = ngx_http_lua_ffi_task_poll(rt);
        char *req = ngx_http_lua_ffi_get_req(p, &len);
        CHECK(p == q[i] && len == 300 && req[0] == 'k' + i && req[299] == 'k' + i);
        ngx_http_lua_ffi_respond(p, 0, NULL, 0);
        CHECK(drain_one(got) && got[0] == q[i]);
        nffi_task_release(got[0]);
    }

    /* a poller that took a task and has not copied it yet: quiesce waits */
    {
        struct echo_th one = {.rt = rt};
        __atomic_store_n(&nffi__borrow_copy_delay_us, 30000, __ATOMIC_RELAXED);
        pthread_create(&one.th, NULL, echo_loop, &one);
        char *b = malloc(SZ0);
        memset(b, 'd', SZ0);
        nffi_task *d = nffi_task_submit_borrowed(rt, "m", 1, b, SZ0, 0, &st);
        while (nffi_task_state(d) == NFFI_TASK_PENDING)
            sched_yield();
        CHECK(nffi_borrow_quiesce() == 1);      /* waited for the copy */
        memset(b, 0x7f, SZ0);
        free(b);
        __atomic_store_n(&nffi__borrow_copy_delay_us, 0, __ATOMIC_RELAXED);
        char *rsp;
        size_t rlen;
        CHECK(drain_one(got) && got[0] == d);
        nffi_task_result(got[0], &rsp, &rlen);
        CHECK(rlen == SZ0 && rsp[0] == 'd' && rsp[SZ0 - 1] == 'd');
        nffi_task_release(got[0]);
        nffi_runtime_finish(rt);
        pthread_join(one.th, NULL);
        rt = test_borrow_rt2 = nffi_runtime_new("borrow2", 0);
    }

    /* pollers copying while the worker quiesces */
    enum { N = 2000, SZ = 4096 };
    struct echo_th th[2];
    for (int i = 0; i < 2; i++) {
        th[i].rt = rt;
        pthread_create(&th[i].th, NULL, echo_loop, &th[i]);
    }
    char **src = malloc(N * sizeof(*src));
    nffi_task **ts = malloc(N * sizeof(*ts));
    for (int i = 0; i < N; i++) {
        src[i] = malloc(SZ);
        memset(src[i], (char)(i % 251), SZ);
        ts[i] = nffi_task_submit_borrowed(rt, "m", 1, src[i], SZ, 0, &st);
    }
    nffi_borrow_quiesce();
    for (int i = 0; i < N; i++) {
        memset(src[i], 0x7f, SZ);               /* what a reused string would read */
        free(src[i]);
    }
    int ok = 1, n = 0;
    while (n < N && drain_one(got)) {
        char *rsp;
        size_t rlen;
        nffi_task_result(got[0], &rsp, &rlen);
        int i = -1;
        for (int j = 0; j < N; j++)
            if (ts[j] == got[0])
                i = j;
        ok &= i >= 0 && rlen == SZ && (unsigned char)rsp[0] == i % 251 && (unsigned char)rsp[SZ - 1] == i % 251;
        nffi_task_release(got[0]);
        n++;
    }
    CHECK(n == N && ok);
    free(src);
    free(ts);
    nffi_runtime_finish(rt);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i].th, NULL);
}

void test_borrow(void)
{
    nffi_runtime *rt = test_borrow_rt = nffi_runtime_new("borrow", 0);
    uint64_t ids[8];
    nffi_task *got[1];
    int st, len;
    CHECK(rt != NULL);

    /* Until a poller takes it, the task reads the caller's bytes (the
     * inspector's preview); the poller copies them, NUL after them included,
     * and the runtime may write into its copy without touching the caller's. */
    static const char body[] = "borrowed\0bytes";
    nffi_task *t = nffi_task_submit_borrowed(rt, "m", 1, body, sizeof(body) - 1, 0, &st);
    CHECK(t != NULL && st == NFFI_OK);
    nffi_task_info info;
    CHECK(nffi_runtime_tasks(rt, 0, &info, 1) == 1 && info.req_len == sizeof(body) - 1);
    if (nffi_instrumented())
        CHECK(info.preview_len == sizeof(body) - 1 && memcmp(info.preview, body, sizeof(body) - 1) == 0);
    void *p = ngx_http_lua_ffi_task_poll(rt);
    char *req = ngx_http_lua_ffi_get_req(p, &len);
    CHECK(p == t && req != body && len == (int)sizeof(body) - 1 && req[len] == '\0' &&
          memcmp(req, body, sizeof(body)) == 0);
    memset(req, 'w', (size_t)len);
    CHECK(memcmp(body, "borrowed\0bytes", sizeof(body)) == 0);
    CHECK(nffi_runtime_tasks(rt, 0, &info, 1) == 1);
    if (nffi_instrumented())                    /* the copy, now */
        CHECK(info.preview_len == sizeof(body) - 1 && info.preview[0] == 'w');
    ngx_http_lua_ffi_respond(p, 0, strdup("ok"), 2);
    CHECK(drain_one(got) && got[0] == t);
    nffi_task_release(t);
    CHECK(freed_ids(ids, 8) == 0);              /* the caller saw this one freed */

    nffi_task *c = nffi_task_submit(rt, "m", 1, body, sizeof(body) - 1, 0, &st);
    p = ngx_http_lua_ffi_task_poll(rt);
    req = ngx_http_lua_ffi_get_req(p, &len);
    CHECK(p == c && req != body && len == (int)sizeof(body) - 1 && memcmp(req, body, sizeof(body)) == 0);
    ngx_http_lua_ffi_respond(p, 0, NULL, 0);
    CHECK(drain_one(got) && got[0] == c);
    nffi_task_release(c);

    /* An empty request is "" either way, never NULL. */
    t = nffi_task_submit_borrowed(rt, "m", 1, NULL, 0, 0, &st);
    p = ngx_http_lua_ffi_task_poll(rt);
    req = ngx_http_lua_ffi_get_req(p, &len);
    CHECK(req != NULL && len == 0 && req[0] == '\0');
    ngx_http_lua_ffi_respond(p, 0, NULL, 0);
    CHECK(drain_one(got) && got[0] == t);
    nffi_task_release(t);

    /* Abandoned while PENDING or READY: freed at once (abandon says 1), so
     * nothing is reported later. */
    char *heap = strdup("pending");
    t = nffi_task_submit_borrowed(rt, "m", 1, heap, 7, 0, &st);
    CHECK(nffi_task_abandon(t) == 1);
    t = nffi_task_submit_borrowed(rt, "m", 1, heap, 7, 0, &st);
    p = ngx_http_lua_ffi_task_poll(rt);
    ngx_http_lua_ffi_respond(p, 0, NULL, 0);
    CHECK(drain_one(got) && got[0] == t && nffi_task_abandon(t) == 1);
    CHECK(freed_ids(ids, 8) == 0);

    /* Abandoned while a runtime thread holds it (POLLED) and while on the done
     * list (DONE): the bytes must outlive it, and each id is reported once,
     * only after the drain freed its task. */
    nffi_task *held = nffi_task_submit_borrowed(rt, "m", 1, heap, 7, 0, &st);
    uint64_t held_id = nffi_task_id(held);
    void *ph = ngx_http_lua_ffi_task_poll(rt);
    nffi_task *done = nffi_task_submit_borrowed(rt, "m", 1, heap, 7, 0, &st);
    uint64_t done_id = nffi_task_id(done);
    void *pd = ngx_http_lua_ffi_task_poll(rt);
    ngx_http_lua_ffi_respond(pd, 0, strdup("late"), 4);
    CHECK(ph == held && pd == done);
    CHECK(nffi_task_abandon(held) == 0 && nffi_task_abandon(done) == 0);
    CHECK(freed_ids(ids, 8) == 0);
    CHECK(drain_none());                        /* frees `done` */
    CHECK(freed_ids(ids, 8) == 1 && ids[0] == done_id);
    req = ngx_http_lua_ffi_get_req(ph, &len);
    CHECK(req != heap && len == 7 && memcmp(req, "pending", 7) == 0);
    ngx_http_lua_ffi_respond(ph, 0, NULL, 0);
    CHECK(freed_ids(ids, 8) == 0);
    CHECK(drain_none());
    CHECK(freed_ids(ids, 8) == 1 && ids[0] == held_id);
    CHECK(freed_ids(ids, 8) == 0);
    free(heap);                                 /* ASan: nothing reads it after this */

    /* Many at once, read back in small pages: every id once. */
    enum { N = 100 };
    uint64_t want[N];
    void *polled[N];
    for (int i = 0; i < N; i++) {
        nffi_task *x = nffi_task_submit_borrowed(rt, "m", 1, "many", 4, 0, &st);
        want[i] = nffi_task_id(x);
        polled[i] = ngx_http_lua_ffi_task_poll(rt);
        CHECK(polled[i] == x && nffi_task_abandon(x) == 0);
    }
    for (int i = 0; i < N; i++)
        ngx_http_lua_ffi_respond(polled[i], 0, NULL, 0);
    CHECK(drain_none());
    uint64_t seen[N + 1];
    int n = 0, k;
    while ((k = nffi_borrow_freed(seen + n, 7)) > 0 && n + k <= N)
        n += k;
    CHECK(n == N && nffi_borrow_freed(seen, 1) == 0);
    int all = 1;
    for (int i = 0; i < N; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found += seen[j] == want[i];
        all &= found == 1;
    }
    CHECK(all);
    CHECK(nffi_borrow_freed(NULL, 4) == 0 && nffi_borrow_freed(ids, 0) == 0);

    quiesce_cases(rt);

    nffi_stats s;
    nffi_runtime_stats(rt, &s);
    CHECK(s.live == 0 && s.depth == 0 && s.in_flight == 0);
}
