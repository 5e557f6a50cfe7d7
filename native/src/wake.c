/* Completion side: respond, the process-wide done list, drain, and the wake
 * socket that tells the worker's pump there is something to drain. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "nffi_internal.h"

/* done_lock guards done_head/done_tail: runtime threads append, drain takes
 * the whole list in one swap so the critical section stays O(1). */
static pthread_mutex_t nffi__done_lock = PTHREAD_MUTEX_INITIALIZER;
static nffi_task *nffi__done_head, *nffi__done_tail;

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

__attribute__((constructor)) static void nffi__init(void)
{
    nffi__pid = getpid();
}

/* A child forked after load inherits the parent's wake socket and done list,
 * neither of which is its own; start from scratch. */
void nffi__fork_check(void)
{
    pid_t p = getpid();
    if (p == nffi__pid)
        return;
    int fd = __atomic_exchange_n(&nffi__wake_fd, -1, __ATOMIC_SEQ_CST);
    if (fd >= 0)
        close(fd);
    __atomic_store_n(&nffi__wake_pending, 0, __ATOMIC_SEQ_CST);
    /* No runtime thread survives a fork, but one may have held the lock. */
    pthread_mutex_init(&nffi__done_lock, NULL);
    nffi__done_head = nffi__done_tail = NULL;
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

static void nffi__wake(void)
{
    if (__atomic_exchange_n(&nffi__wake_pending, 1, __ATOMIC_SEQ_CST) == 0) {
        int fd = __atomic_load_n(&nffi__wake_fd, __ATOMIC_SEQ_CST);
        if (fd >= 0)
            nffi__write_byte(fd);
        /* fd < 0: nffi_wake_accept sees pending == 1 and writes the byte. */
    }
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
    if (NFFI_INST) {
        NFFI_STORE(&t->t_responded, nffi_now_ns());
        NFFI_ADD(&rt->responded, 1);
    }
    NFFI_ADD(&rt->in_flight, -1);

    /* A spinning worker takes the result straight from the task (release
     * publishes rsp/rc to its acquiring CAS). See nffi_task_spin. */
    int expect = NFFI__DIRECT_SPINNING;
    if (__atomic_compare_exchange_n(&t->direct, &expect, NFFI__DIRECT_DONE, 0,
                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        return;

    pthread_mutex_lock(&nffi__done_lock);
    __atomic_store_n(&t->state, NFFI_TASK_DONE, __ATOMIC_RELEASE);
    t->dnext = NULL;
    if (nffi__done_tail != NULL)
        nffi__done_tail->dnext = t;
    else
        nffi__done_head = t;
    nffi__done_tail = t;
    pthread_mutex_unlock(&nffi__done_lock);
    /* The task may already be freed by the worker: don't touch it below. */
    nffi__wake();
}

void ngx_http_lua_nonblocking_ffi_respond(void *task, int rc, char *rsp, int rsp_len)
    __attribute__((alias("ngx_http_lua_ffi_respond")));

NFFI_EXPORT int nffi_drain(nffi_task **out, int max)
{
    nffi__fork_check();
    /*
     * Clear the flag BEFORE taking the list. A respond that appends after our
     * swap does so after we released done_lock, hence after this store; its
     * exchange therefore reads 0 (or a 1 from a later respond that wrote a
     * byte itself) and it writes a wake byte: nothing is left behind silently.
     * Clearing after the swap would lose that wake-up: respond appends after
     * the swap, sees the stale 1, skips the byte, then we store 0 and the task
     * sits on the done list until some unrelated response.
     */
    __atomic_store_n(&nffi__wake_pending, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&nffi__done_lock);
    nffi_task *head = nffi__done_head, *tail = nffi__done_tail;
    nffi__done_head = nffi__done_tail = NULL;
    pthread_mutex_unlock(&nffi__done_lock);
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
            if (NFFI_INST)
                NFFI_BUMP(&t->rt->late, 1);
            nffi__task_free(t);
            continue;
        }
        __atomic_store_n(&t->state, NFFI_TASK_READY, __ATOMIC_RELAXED);
        out[n++] = t;
    }
    return n;
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
    nffi__wake();
}
