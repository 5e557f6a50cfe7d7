/*
 * libnffi_ngx: libnffi's eventfd registered in the nginx worker's own event
 * loop, so that a runtime thread's response reaches its waiting coroutine in
 * one notification nginx handles itself: epoll reports the eventfd, the read
 * handler below (nffi_fast_drain in libnffi) posts each waiter's
 * lua-nginx-module semaphore, and lua-nginx-module resumes the coroutines from
 * nginx's posted events in the same turn of the loop. No light thread, no
 * cosocket read, no Lua loop in between.
 *
 * A library loaded into the worker through FFI, not a dynamic module: nothing
 * to add to nginx.conf (no load_module), and it is only ever loaded by the
 * binding that uses it. It is built against the installed nginx's headers
 * (Debian nginx-dev, configured with Debian's own flags) and proves at run
 * time that they are the running binary's before it touches any nginx
 * structure: nginx_version and NGX_MODULE_SIGNATURE against ngx_core_module's,
 * which is how nginx itself accepts a dynamic module.
 *
 * Everything here runs on the worker's event-loop thread.
 */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <nginx.h>
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include "nffi.h"

static ngx_connection_t *nffi_ngx_conn;
static int nffi_ngx_close_calls;
/* Posted at most once per turn of the loop by a submit that found pollers
 * asleep: wakes them after every coroutine resumed in this turn submitted. */
static ngx_event_t nffi_ngx_kick_ev;

/*
 * The loop's short poll (libnffi's wake.c says why): while a call made one
 * after another is out, this event sits on ngx_posted_next_events, so the
 * next epoll_wait does not block, and each turn it looks at the done list,
 * for up to poll_us. A poll that ran out with nothing makes the next ones
 * rarer (after k in a row, 2^k - 1 are skipped), so a runtime that answers
 * slowly is waited for in epoll_wait, as without it.
 */
#define NFFI_NGX_POLL_US 30
#define NFFI_NGX_POLL_MISS_MAX 6
static ngx_event_t nffi_ngx_poll_ev;
static int nffi_ngx_poll_us = NFFI_NGX_POLL_US;
static int64_t nffi_ngx_poll_deadline;
static int nffi_ngx_poll_miss, nffi_ngx_poll_skip;
static int nffi_ngx_one_cpu;     /* the worker may run on one CPU only */

static void nffi_ngx_poll_handler(ngx_event_t *ev)
{
    int last = ngx_exiting || ngx_quit || ngx_terminate || nffi_now_ns() >= nffi_ngx_poll_deadline;
    int got = nffi_fast_poll(last);
    if (got < 0) {
        /* A worker pinned to one CPU shares it with the runtime thread it
         * waits for: hand it the CPU rather than turn the loop past it. */
        if (nffi_ngx_one_cpu)
            sched_yield();
        ngx_post_event(ev, &ngx_posted_next_events);
        return;
    }
    if (got > 0) {
        nffi_ngx_poll_miss = 0;
    } else if (last) {
        if (nffi_ngx_poll_miss < NFFI_NGX_POLL_MISS_MAX)
            nffi_ngx_poll_miss++;
        nffi_ngx_poll_skip = (1 << nffi_ngx_poll_miss) - 1;
    }
}

static void nffi_ngx_poll_start(void)
{
    if (nffi_ngx_poll_us <= 0 || nffi_ngx_poll_ev.posted || ngx_exiting || ngx_quit ||
        ngx_terminate)
        return;
    if (nffi_ngx_poll_skip > 0) {
        nffi_ngx_poll_skip--;
        return;
    }
    if (!nffi_fast_poll_begin())
        return;
    nffi_ngx_poll_deadline = nffi_now_ns() + (int64_t)nffi_ngx_poll_us * 1000;
    ngx_post_event(&nffi_ngx_poll_ev, &ngx_posted_next_events);
}

__attribute__((visibility("default"))) void nffi_ngx_set_poll_us(int us)
{
    nffi_ngx_poll_us = us > 0 ? (us > 100000 ? 100000 : us) : 0;
    nffi_ngx_poll_miss = nffi_ngx_poll_skip = 0;
}

#ifdef HAVE_POSTED_DELAYED_EVENTS_PATCH
/*
 * OpenResty's nginx resumes a coroutine that called ngx.sleep(0) from
 * ngx_posted_delayed_events, after ngx_posted_events was processed: a kick
 * posted there would wait for the next turn, whose epoll_wait blocks until
 * some other event, and the tasks it queues (libnffi stages them until the
 * kick) with it. This one, on ngx_posted_next_events, keeps that epoll_wait
 * from blocking; the kick takes it back when it runs in the same turn.
 */
static ngx_event_t nffi_ngx_kick_next_ev;
#endif

static void nffi_ngx_kick_handler(ngx_event_t *ev)
{
    (void) ev;
#ifdef HAVE_POSTED_DELAYED_EVENTS_PATCH
    /* the kick ran in this turn: the backstop would only cost a turn */
    if (ev != &nffi_ngx_kick_next_ev && nffi_ngx_kick_next_ev.posted) {
        ngx_delete_posted_event(&nffi_ngx_kick_next_ev);
    }
#endif
    nffi_kick_pollers();
}

static void nffi_ngx_kick_schedule(void)
{
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* Lua may run outside the posted events here (premature timers): a
         * posted kick could wait for an event that never comes. */
        nffi_kick_pollers();
        return;
    }
    if (!nffi_ngx_kick_ev.posted) {
        ngx_post_event(&nffi_ngx_kick_ev, &ngx_posted_events);
    }
#ifdef HAVE_POSTED_DELAYED_EVENTS_PATCH
    if (!nffi_ngx_kick_next_ev.posted) {
        ngx_post_event(&nffi_ngx_kick_next_ev, &ngx_posted_next_events);
    }
#endif
}

static void nffi_ngx_stop(void)
{
    ngx_connection_t *c = nffi_ngx_conn;
    if (c == NULL)
        return;
    nffi_ngx_conn = NULL;
    if (nffi_ngx_kick_ev.posted) {
        ngx_delete_posted_event(&nffi_ngx_kick_ev);
    }
#ifdef HAVE_POSTED_DELAYED_EVENTS_PATCH
    if (nffi_ngx_kick_next_ev.posted) {
        ngx_delete_posted_event(&nffi_ngx_kick_next_ev);
    }
#endif
    nffi_fast_set_kick(NULL);
    nffi_fast_set_wait(NULL);
    if (nffi_ngx_poll_ev.posted) {
        ngx_delete_posted_event(&nffi_ngx_poll_ev);
    }
    /* a poll that held the signal token gives it back in the last drain of
     * nffi_fast_remove below */
    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
    if (c->read->posted) {
        /* a multi-statement macro: braces needed */
        ngx_delete_posted_event(c->read);
    }
    /* libnffi keeps the eventfd open (a runtime thread may be writing to it):
     * free the slot without closing the descriptor. */
    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
    nffi_fast_remove();
}

static void nffi_ngx_write_handler(ngx_event_t *wev)
{
    (void) wev;
}

static void nffi_ngx_read_handler(ngx_event_t *rev)
{
    ngx_connection_t *c = rev->data;
    if (c->close) {
        /* First: the graceful shutdown's close of idle connections (it set
         * ngx_exiting): stay while waiters are outstanding. Again: the
         * shutdown timer closing everything: go now. */
        c->close = 0;
        c->idle = 0;
        if (++nffi_ngx_close_calls > 1) {
            nffi_ngx_stop();
            return;
        }
    }
    rev->ready = 0;
    nffi_fast_drain();
    if (ngx_exiting && nffi_ngx_conn != NULL) {
        nffi_wake_stats st;
        nffi_wake_stats_get(&st);
        if (st.outstanding == 0)
            nffi_ngx_stop();
    }
}

static int nffi_ngx_fail(char *reason, int reason_max, const char *why)
{
    if (reason != NULL && reason_max > 0)
        snprintf(reason, (size_t)reason_max, "%s", why);
    return -1;
}

__attribute__((visibility("default"))) int nffi_ngx_start(int fault, char *reason, int reason_max)
{
    char why[160];
    if (nffi_ngx_conn != NULL)
        return 0;
    if (fault == 1 || ngx_core_module.version != nginx_version ||
        ngx_core_module.signature == NULL ||
        ngx_strcmp(ngx_core_module.signature, NGX_MODULE_SIGNATURE) != 0) {
        snprintf(why, sizeof(why), "nginx headers do not match the running nginx (built for %s)",
                 NGINX_VERSION);
        return nffi_ngx_fail(reason, reason_max, why);
    }
    ngx_event_conf_t *ecf = ngx_event_get_conf(ngx_cycle->conf_ctx, ngx_event_core_module);
    if (fault == 2 || !(ngx_event_flags & NGX_USE_EPOLL_EVENT) || ecf == NULL ||
        ecf->name == NULL || ngx_strcmp(ecf->name, "epoll") != 0) {
        snprintf(why, sizeof(why), "event method is %s, not epoll",
                 fault == 2 ? "not epoll (test)" : ecf && ecf->name ? (char *) ecf->name : "unknown");
        return nffi_ngx_fail(reason, reason_max, why);
    }
    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE)
        return nffi_ngx_fail(reason, reason_max, "not in a worker process");
    if (ngx_exiting || ngx_quit || ngx_terminate)
        return nffi_ngx_fail(reason, reason_max, "the worker is exiting");
    void *post = dlsym(RTLD_DEFAULT, "ngx_http_lua_ffi_sema_post");
    if (post == NULL)
        return nffi_ngx_fail(reason, reason_max, "ngx_http_lua_ffi_sema_post not found");

    int fd = nffi_fast_install(post);
    if (fd < 0) {
        snprintf(why, sizeof(why), "eventfd: errno %d", -fd);
        return nffi_ngx_fail(reason, reason_max, why);
    }
    ngx_connection_t *c = ngx_get_connection(fd, ngx_cycle->log);
    if (c == NULL) {
        nffi_fast_remove();
        return nffi_ngx_fail(reason, reason_max, "no free connection (worker_connections)");
    }
    c->log = ngx_cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = nffi_ngx_read_handler;
    c->write->handler = nffi_ngx_write_handler;
    /* idle: a graceful shutdown calls the handler with c->close set */
    c->idle = 1;
    nffi_ngx_conn = c;
    nffi_ngx_close_calls = 0;
    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        nffi_ngx_stop();
        return nffi_ngx_fail(reason, reason_max, "ngx_handle_read_event failed");
    }
    nffi_ngx_kick_ev.handler = nffi_ngx_kick_handler;
    nffi_ngx_kick_ev.log = ngx_cycle->log;
    nffi_ngx_kick_ev.data = c;
#ifdef HAVE_POSTED_DELAYED_EVENTS_PATCH
    nffi_ngx_kick_next_ev.handler = nffi_ngx_kick_handler;
    nffi_ngx_kick_next_ev.log = ngx_cycle->log;
    nffi_ngx_kick_next_ev.data = c;
#endif
    nffi_fast_set_kick((void *) nffi_ngx_kick_schedule);
    cpu_set_t cpus;
    nffi_ngx_one_cpu = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) == 1;
    nffi_ngx_poll_ev.handler = nffi_ngx_poll_handler;
    nffi_ngx_poll_ev.log = ngx_cycle->log;
    nffi_ngx_poll_ev.data = c;
    nffi_fast_set_wait((void *) nffi_ngx_poll_start);
    return 0;
}

__attribute__((visibility("default"))) int nffi_ngx_active(void)
{
    return nffi_ngx_conn != NULL;
}

__attribute__((visibility("default"))) void nffi_ngx_exit_check(void)
{
    if (nffi_ngx_conn == NULL || !ngx_exiting)
        return;
    nffi_wake_stats st;
    nffi_wake_stats_get(&st);
    if (st.outstanding == 0)
        nffi_ngx_stop();
}
