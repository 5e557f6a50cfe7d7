/* Completion side: respond, the process-wide done list, the two drains, and
 * the two ways of telling the worker there is something to drain: the wake
 * socket the pump reads, or an eventfd nginx's event loop watches (registered
 * by libnffi_ngx.so) whose handler posts the waiters' semaphores itself. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>
#include "nffi_internal.h"

/* The done list, lock-free: runtime threads push a responded task on this
 * stack with one CAS, and a drain takes the whole stack with one exchange and
 * reverses it into response order. Nothing pops a single task, so there is no
 * ABA. It had a mutex (append under it, swap the list under it): a lock and
 * an unlock a response, and a futex wake whenever a response and a drain
 * collided. Now one locked instruction on each side. Atomic, seq_cst: see
 * nffi__wake for why the push is ordered before fast_on's load. */
static nffi_task *nffi__done_top;

/* Takes every task responded so far, oldest first; *tail gets the last one.
 * Worker thread. */
static nffi_task *nffi__done_take(nffi_task **tail)
{
    nffi_task *t = __atomic_exchange_n(&nffi__done_top, NULL, __ATOMIC_SEQ_CST), *fifo = NULL;
    *tail = t;
    while (t != NULL) {
        nffi_task *next = t->dnext;
        t->dnext = fifo;
        fifo = t;
        t = next;
    }
    return fifo;
}

/* 1 while a wake byte is (about to be) in flight and not yet answered by a
 * drain; coalesces any number of responses into one byte. Atomic. */
static int nffi__wake_pending;
/* The accepted socket end, nonblocking; -1 until nffi_wake_accept. Atomic:
 * written by the worker, read by runtime threads. */
static int nffi__wake_fd = -1;

/* Worker-only: tasks already taken from the done list but not yet handed
 * out because the caller's array was full. */
static nffi_task *nffi__backlog_head, *nffi__backlog_tail;
/* Worker-only: the process the global wake state belongs to. */
static pid_t nffi__pid;

/* The eventfd path. fast_on and fast_fd are read by runtime threads in
 * respond; everything else here is worker-only (stats read it relaxed).
 * fast_pending coalesces eventfd writes as wake_pending does socket bytes. */
typedef int (*nffi__post_fn)(void *sema, int n);
/* The event loop polls (nffi_fast_poll_begin) only while at most this many
 * waiters are outstanding: calls made one after another. */
#define NFFI__LOOP_POLL_WAITERS 2
static nffi__post_fn nffi__post;
static int nffi__fast_on;
static int nffi__fast_fd = -1;
static int nffi__fast_pending;
static int64_t nffi__outstanding;   /* tasks with a semaphore not posted yet */
static uint64_t nffi__fast_wakeups, nffi__fast_posted, nffi__fast_max_batch;
static uint64_t nffi__signals;      /* atomic RMW from runtime threads */
/* The event loop's short poll (nffi_fast_poll_begin): the hook libnffi_ngx.so
 * sets, called when a waiter parks while few do; polls that found a response
 * (worker-only, read relaxed by stats). */
static void (*nffi__wait_hook)(void);
static uint64_t nffi__loop_hits;

/* Set in a child by the atfork handler: fork_check then compares pids. Saves
 * the getpid system call on every drain (glibc no longer caches the pid). */
static int nffi__forked;

static void nffi__atfork_child(void)
{
    __atomic_store_n(&nffi__forked, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void nffi__init(void)
{
    nffi__pid = getpid();
    pthread_atfork(NULL, NULL, nffi__atfork_child);
}

/* A child forked after load inherits the parent's wake socket and done list,
 * neither of which is its own; start from scratch. */
void nffi__fork_check(void)
{
    if (!__atomic_load_n(&nffi__forked, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&nffi__forked, 0, __ATOMIC_RELAXED);
    pid_t p = getpid();
    if (p == nffi__pid)
        return;
    int fd = __atomic_exchange_n(&nffi__wake_fd, -1, __ATOMIC_SEQ_CST);
    if (fd >= 0)
        close(fd);
    __atomic_store_n(&nffi__wake_pending, 0, __ATOMIC_SEQ_CST);
    fd = __atomic_exchange_n(&nffi__fast_fd, -1, __ATOMIC_SEQ_CST);
    if (fd >= 0)
        close(fd);
    __atomic_store_n(&nffi__fast_on, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&nffi__fast_pending, 0, __ATOMIC_SEQ_CST);
    nffi__post = NULL;
    nffi__outstanding = 0;
    /* No runtime thread survives a fork: the parent's responses are not ours. */
    __atomic_store_n(&nffi__done_top, NULL, __ATOMIC_SEQ_CST);
    nffi__backlog_head = nffi__backlog_tail = NULL;
    nffi__pid = p;
}

static void nffi__write_byte(int fd)
{
    ssize_t r;
    do
        r = send(fd, "x", 1, MSG_NOSIGNAL);  /* a closed pump must not SIGPIPE us */
    while (r < 0 && errno == EINTR);
    /* EAGAIN: the socket buffer is full of unread wake bytes already.
     * EPIPE: the pump is gone; there is nobody to wake. */
}

static void nffi__wake_socket(void)
{
    if (__atomic_exchange_n(&nffi__wake_pending, 1, __ATOMIC_SEQ_CST) == 0) {
        int fd = __atomic_load_n(&nffi__wake_fd, __ATOMIC_SEQ_CST);
        if (fd >= 0) {
            nffi__write_byte(fd);
            NFFI_ADD(&nffi__signals, 1);
        }
        /* fd < 0: nffi_wake_accept sees pending == 1 and writes the byte. */
    }
}

static void nffi__signal_eventfd(int fd)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(fd, &one, sizeof(one));
    while (r < 0 && errno == EINTR);
    /* EAGAIN: the counter is at its maximum, the handler is due anyway. */
}

/*
 * Called after the task was pushed on the done list. fast_on is read after
 * the push (both seq_cst): nffi_fast_remove clears it before its last drain
 * takes the list, so a response that still saw 1 is on the list that drain takes, and
 * one that saw 0 writes the socket the pump (or a waiter draining by itself)
 * reads. The eventfd is never closed while the process lives, so a late
 * write lands in it harmlessly.
 */
static void nffi__wake(void)
{
    if (__atomic_load_n(&nffi__fast_on, __ATOMIC_SEQ_CST)) {
        if (__atomic_exchange_n(&nffi__fast_pending, 1, __ATOMIC_SEQ_CST) == 0) {
            nffi__signal_eventfd(__atomic_load_n(&nffi__fast_fd, __ATOMIC_SEQ_CST));
            NFFI_ADD(&nffi__signals, 1);
        }
        return;
    }
    nffi__wake_socket();
}

NFFI_EXPORT void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len)
{
    nffi_task *t = task;
    if (t == NULL) {
        free(rsp);
        return;
    }
    nffi_runtime *rt = t->rt;
    t->rsp = rsp;
    t->rsp_len = rsp == NULL ? 0 : rsp_len > 0 ? (size_t)rsp_len : strlen(rsp);
    NFFI_STORE(&t->rc, rc);
    if (NFFI_INST && t->lat_w != 0)
        NFFI_STORE(&t->t_responded, nffi__now());

    /* A spinning worker takes the result straight from the task (release
     * publishes rsp/rc to its acquiring CAS). See nffi_task_spin. A plain
     * load first: no locked instruction unless a worker spins on this task.
     * The count comes before the CAS, after which the task may be freed. */
    if (__atomic_load_n(&t->direct, __ATOMIC_RELAXED) == NFFI__DIRECT_SPINNING) {
        NFFI_ADD(&rt->responded_direct, 1);
        int expect = NFFI__DIRECT_SPINNING;
        if (__atomic_compare_exchange_n(&t->direct, &expect, NFFI__DIRECT_DONE, 0,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            return;
        NFFI_ADD(&rt->responded_direct, -1);
    }

    NFFI_ADD(&rt->responded, 1);
    __atomic_store_n(&t->state, NFFI_TASK_DONE, __ATOMIC_RELEASE);
    nffi_task *top = __atomic_load_n(&nffi__done_top, __ATOMIC_RELAXED);
    do
        t->dnext = top;
    while (!__atomic_compare_exchange_n(&nffi__done_top, &top, t, 1, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED));
    /* The task may already be freed by the worker: don't touch it below. */
    nffi__wake();
}

void ngx_http_lua_nonblocking_ffi_respond(void *task, int rc, char *rsp, int rsp_len)
    __attribute__((alias("ngx_http_lua_ffi_respond")));

/* Worker thread. A task with a semaphore is READY and its semaphore posted
 * here (lua-nginx-module resumes the waiter from nginx's posted events). */
static void nffi__post_ready(nffi_task *t)
{
    void *sema = t->sema;
    t->sema = NULL;
    nffi__outstanding--;
    __atomic_store_n(&t->state, NFFI_TASK_READY, __ATOMIC_RELAXED);
    NFFI_STORE(&nffi__fast_posted, nffi__fast_posted + 1);
    nffi__post(sema, 1);
}

void nffi__sema_forget(nffi_task *t)
{
    if (t->sema != NULL) {
        t->sema = NULL;
        nffi__outstanding--;
    }
}

NFFI_EXPORT int nffi_task_set_sema(nffi_task *t, void *sema)
{
    if (t == NULL || sema == NULL || nffi__post == NULL || t->abandoned ||
        __atomic_load_n(&t->state, __ATOMIC_ACQUIRE) == NFFI_TASK_READY)
        return NFFI_EINVAL;
    if (t->sema == NULL)
        nffi__outstanding++;
    t->sema = sema;
    /* few waiters (calls made one after another): the loop may poll briefly */
    if (nffi__wait_hook != NULL && nffi__outstanding <= NFFI__LOOP_POLL_WAITERS)
        nffi__wait_hook();
    return NFFI_OK;
}

NFFI_EXPORT int nffi_drain(nffi_task **out, int max)
{
    nffi__fork_check();
    /*
     * Clear the flag BEFORE taking the list. A respond that pushes after our
     * exchange does so after this store (both seq_cst); its
     * exchange therefore reads 0 (or a 1 from a later respond that wrote a
     * byte itself) and it writes a wake byte: nothing is left behind silently.
     * Clearing after the swap would lose that wake-up: respond appends after
     * the swap, sees the stale 1, skips the byte, then we store 0 and the task
     * sits on the done list until some unrelated response.
     */
    __atomic_store_n(&nffi__wake_pending, 0, __ATOMIC_SEQ_CST);
    nffi_task *tail;
    nffi_task *head = nffi__done_take(&tail);
    if (head != NULL) {
        if (nffi__backlog_tail != NULL)
            nffi__backlog_tail->dnext = head;
        else
            nffi__backlog_head = head;
        nffi__backlog_tail = tail;
    }

    int n = 0;
    while (nffi__backlog_head != NULL && n < max && out != NULL) {
        nffi_task *t = nffi__backlog_head;
        nffi__backlog_head = t->dnext;
        if (nffi__backlog_head == NULL)
            nffi__backlog_tail = NULL;
        t->dnext = NULL;
        if (t->abandoned) {
            if (NFFI_INST_RT(t->rt))
                NFFI_BUMP(&t->rt->late, 1);
            nffi__task_free(t);
            continue;
        }
        if (t->sema != NULL) {
            nffi__post_ready(t);
            continue;
        }
        __atomic_store_n(&t->state, NFFI_TASK_READY, __ATOMIC_RELAXED);
        out[n++] = t;
    }
    return n;
}

/* Delivers every done task: semaphores posted, pump waiters' tasks handed to
 * the pump. Clears fast_pending first, for the reason nffi_drain gives. */
static int nffi__fast_deliver(void)
{
    __atomic_store_n(&nffi__fast_pending, 0, __ATOMIC_SEQ_CST);
    nffi_task *tail;
    nffi_task *t = nffi__done_take(&tail);

    int posted = 0, to_pump = 0;
    while (t != NULL) {
        nffi_task *next = t->dnext;
        t->dnext = NULL;
        if (t->abandoned) {
            if (NFFI_INST_RT(t->rt))
                NFFI_BUMP(&t->rt->late, 1);
            nffi__task_free(t);
        } else if (t->sema != NULL) {
            nffi__post_ready(t);
            posted++;
        } else {
            /* A waiter of the pump's (a runtime told to use it): the task stays
             * DONE, so an abandon meanwhile defers as it does on the done list. */
            if (nffi__backlog_tail != NULL)
                nffi__backlog_tail->dnext = t;
            else
                nffi__backlog_head = t;
            nffi__backlog_tail = t;
            to_pump = 1;
        }
        t = next;
    }
    if (to_pump)
        nffi__wake_socket();
    if ((uint64_t)posted > nffi__fast_max_batch)
        NFFI_STORE(&nffi__fast_max_batch, (uint64_t)posted);
    return posted;
}

NFFI_EXPORT int nffi_fast_drain(void)
{
    nffi__fork_check();
    int fd = __atomic_load_n(&nffi__fast_fd, __ATOMIC_SEQ_CST);
    if (fd >= 0) {
        uint64_t v;
        ssize_t r;
        do
            r = read(fd, &v, sizeof(v));
        while (r < 0 && errno == EINTR);
    }
    NFFI_STORE(&nffi__fast_wakeups, nffi__fast_wakeups + 1);
    return nffi__fast_deliver();
}

/*
 * The event loop's short poll. A sequential call's response comes back within
 * microseconds, but the worker sleeps in epoll_wait meanwhile, and the
 * eventfd write that wakes it costs the runtime thread a system call and the
 * worker the wake-up of a halted vCPU (on the 2-vCPU VM, 64 B calls one after
 * another: wake-up 5-13 us of a 9-16 us call). Instead libnffi_ngx.so keeps
 * the loop turning for a few microseconds (an event on nginx's
 * ngx_posted_next_events: epoll_wait does not block while one is there) and
 * looks at the done list each turn.
 *
 * begin takes the signal token: fast_pending 0 -> 1, so responses skip the
 * eventfd write (as when a wake-up is already on its way) and the poll must
 * deliver them. It returns 0, and there is nothing to poll for, when a
 * signal is pending already: the eventfd will report. The eventfd's counter
 * is 0 while the poll holds the token (no response wrote it since the last
 * drain read it), so delivering needs no read. poll(last) delivers when
 * something is done, or when last (the poll's time is up): either way the
 * token is given back (fast_pending 0 before the list is taken, as in
 * nffi_drain), and a response after that writes the eventfd as usual. A
 * response that pushed before the poll took the list but looked at
 * fast_pending after it was given back still writes: a spurious wake-up, whose
 * drain finds nothing (nothing is ever left without a signal or a drain).
 */
NFFI_EXPORT int nffi_fast_poll_begin(void)
{
    if (!__atomic_load_n(&nffi__fast_on, __ATOMIC_SEQ_CST))
        return 0;
    return __atomic_exchange_n(&nffi__fast_pending, 1, __ATOMIC_SEQ_CST) == 0;
}

/* -1: nothing done yet, the poll goes on (only when !last and one or two
 * waiters are outstanding); else the semaphores posted, and the poll is over.
 *
 * Over as soon as more waiters are out: the poll is for calls made one after
 * another, and with many in flight (a poll begun by the first of a batch of
 * coroutines to park again) the event loop would spin through turns while
 * the runtime thread works, for nothing the eventfd would not bring. On the
 * 2-vCPU VM that spin is worse than nothing: its two vCPUs get about one
 * CPU's time between them (two busy loops on the two vCPUs each ran at
 * ~55%), so a worker spinning on one vCPU while its runtime thread runs on
 * the other takes the very time the response needs. 4 KiB x 32 with the
 * worker and its runtime thread pinned apart (taskset), calls/s: 85,000 and
 * 253,000-267,000 polling on (4 runs), 232,000-268,000 with the poll off
 * (2 runs), 260,000-396,000 ending it here (5 runs); pinned together
 * 460,000-520,000 in all three ways. */
NFFI_EXPORT int nffi_fast_poll(int last)
{
    nffi__fork_check();
    if (!last && nffi__outstanding > 0 && nffi__outstanding <= NFFI__LOOP_POLL_WAITERS &&
        __atomic_load_n(&nffi__done_top, __ATOMIC_ACQUIRE) == NULL)
        return -1;
    int posted = nffi__fast_deliver();
    if (posted > 0)
        NFFI_STORE(&nffi__loop_hits, nffi__loop_hits + 1);
    return posted;
}

NFFI_EXPORT void nffi_fast_set_wait(void *hook)
{
    nffi__wait_hook = (void (*)(void))hook;
}

NFFI_EXPORT int nffi_fast_install(void *post)
{
    nffi__fork_check();
    if (post == NULL)
        return NFFI_EINVAL;
    nffi__post = (nffi__post_fn)post;
    int fd = __atomic_load_n(&nffi__fast_fd, __ATOMIC_SEQ_CST);
    if (fd < 0) {
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0)
            return -errno;
        __atomic_store_n(&nffi__fast_fd, fd, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&nffi__fast_on, 1, __ATOMIC_SEQ_CST);
    /* One first signal: the handler takes whatever is done already. */
    __atomic_store_n(&nffi__fast_pending, 1, __ATOMIC_SEQ_CST);
    nffi__signal_eventfd(fd);
    return fd;
}

NFFI_EXPORT void nffi_fast_remove(void)
{
    nffi__fork_check();
    if (!__atomic_load_n(&nffi__fast_on, __ATOMIC_SEQ_CST))
        return;
    __atomic_store_n(&nffi__fast_on, 0, __ATOMIC_SEQ_CST);
    nffi_fast_drain();
    /* Waiters whose tasks are not done: wake them without a result; they see
     * the task not READY and wait on the pump's path from now on. */
    for (nffi_task *t = nffi__live.head; t != NULL && nffi__outstanding > 0; t = t->gnext) {
        if (t->sema != NULL) {
            void *sema = t->sema;
            nffi__sema_forget(t);
            nffi__post(sema, 1);
        }
    }
}

NFFI_EXPORT void nffi_wake_stats_get(nffi_wake_stats *out)
{
    if (out == NULL)
        return;
    out->fast_wakeups = NFFI_LOAD(&nffi__fast_wakeups);
    out->fast_posted = NFFI_LOAD(&nffi__fast_posted);
    out->fast_max_batch = NFFI_LOAD(&nffi__fast_max_batch);
    out->signals = NFFI_LOAD(&nffi__signals);
    out->outstanding = NFFI_LOAD(&nffi__outstanding);
    out->fast_on = __atomic_load_n(&nffi__fast_on, __ATOMIC_SEQ_CST);
    out->fast_fd = __atomic_load_n(&nffi__fast_fd, __ATOMIC_SEQ_CST);
    out->loop_hits = NFFI_LOAD(&nffi__loop_hits);
}

NFFI_EXPORT int nffi_wake_listen(char *path_out, int path_max)
{
    nffi__fork_check();
    if (path_out == NULL || path_max <= 0)
        return -EINVAL;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    char dir[sizeof(sa.sun_path)];
    int n = snprintf(dir, sizeof(dir), "%s/nffi-wake-XXXXXX", tmp);
    if (n < 0 || (size_t)n + sizeof("/w.sock") > sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    if ((size_t)n + sizeof("/w.sock") > (size_t)path_max)
        return -ENAMETOOLONG;
    if (mkdtemp(dir) == NULL)               /* mode 0700 */
        return -errno;
    memcpy(sa.sun_path, dir, (size_t)n);
    memcpy(sa.sun_path + n, "/w.sock", sizeof("/w.sock"));   /* length checked above */

    int err, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = -errno;
        goto fail_dir;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = -errno;
        goto fail_fd;
    }
    if (chmod(sa.sun_path, 0600) != 0 || listen(fd, 4) != 0) {
        err = -errno;
        goto fail_sock;
    }
    memcpy(path_out, sa.sun_path, strlen(sa.sun_path) + 1);
    return fd;

fail_sock:
    unlink(sa.sun_path);
fail_fd:
    close(fd);
fail_dir:
    rmdir(dir);
    return err;
}

static void nffi__remove_path(const char *path)
{
    if (path == NULL)
        return;
    unlink(path);
    char dir[PATH_MAX];
    size_t len = strlen(path);
    const char *slash = strrchr(path, '/');
    if (slash == NULL || len >= sizeof(dir))
        return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    rmdir(dir);
}

/* Installs fd as the wake write side. Replacing an earlier fd reuses its
 * number (dup3) so a runtime thread that just loaded it never writes to an
 * fd number that was closed and possibly reused for something else. */
static void nffi__install_wake_fd(int fd)
{
    int old = __atomic_load_n(&nffi__wake_fd, __ATOMIC_SEQ_CST);
    if (old >= 0 && dup3(fd, old, O_CLOEXEC) >= 0) {
        close(fd);
        fd = old;
    } else if (old >= 0) {
        close(old);
    }
    __atomic_store_n(&nffi__wake_fd, fd, __ATOMIC_SEQ_CST);
    /* Responses that came before the fd existed set pending without writing. */
    if (__atomic_load_n(&nffi__wake_pending, __ATOMIC_SEQ_CST))
        nffi__write_byte(fd);
}

NFFI_EXPORT int nffi_wake_accept(int listen_fd, const char *path)
{
    nffi__fork_check();
    int err = 0, fd = -1;
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, 100);               /* the peer should already be queued */
    while (r < 0 && errno == EINTR);
    if (r < 0)
        err = -errno;
    else if (r == 0)
        err = -ETIMEDOUT;
    else if ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
        err = -errno;
    if (fd >= 0) {
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0)
            err = -errno;
        else if (cr.pid != getpid())
            err = -EPERM;
        if (err != 0) {
            close(fd);
            fd = -1;
        }
    }
    /* One shot: success or not, the rendezvous point is gone afterwards. */
    if (listen_fd >= 0)
        close(listen_fd);
    nffi__remove_path(path);
    if (err != 0)
        return err;
    nffi__install_wake_fd(fd);
    return 0;
}

NFFI_EXPORT void nffi_wake_kick(void)
{
    nffi__fork_check();
    nffi__wake_socket();
}
