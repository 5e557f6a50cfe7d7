/*
 * Hardware watchpoints on the first instruction of breakpointed functions: the
 * outer gate of the breakpoint hook (src/hook.c), used by watching
 * (src/hook_watch.c).
 *
 * Every call of a Lua function, whichever way it comes (a CALL instruction,
 * pcall, a metamethod, lua_call from C, a trace exiting onto the function's
 * header), makes the interpreter read the function's first instruction before
 * it dispatches on it. A debug-register watchpoint on those 4 bytes (perf
 * event with sigtrap) raises SIGTRAP on this thread right after that read and
 * before the dispatch: the handler turns the call hook on, and the dispatch
 * that follows already goes through it. So while no coroutine is inside a
 * breakpointed function the VM runs with no hook at all, at full speed.
 *
 * Not every machine allows it: perf_event_open may be refused
 * (kernel.perf_event_paranoid 3, a seccomp profile), and x86 has 4 debug
 * registers. nffi__watch_set fails then and the hook stays a call hook.
 * Worse, a machine may open the event and never deliver a trap (seen on an
 * AMD EPYC VM): an open proves nothing. So the hook proves the whole chain in
 * the worker before it relies on it (nffi_hook_watch_check_*,
 * src/hook_watch.c), and while it relies on it, nffi__watch_health looks each
 * service tick for what could steal the traps since: a tracer (gdb, strace:
 * ptrace sees SIGTRAP first, and gdb does not pass it on by default), another
 * SIGTRAP handler installed over ours, SIGTRAP blocked on this thread (the
 * kernel then delivers it late, flagged), and events that counted an access
 * no trap of ours reported. Debug registers themselves cannot be taken from
 * us: perf, ptrace (gdb's hardware watchpoints) and we all reserve them
 * through the kernel's hw_breakpoint slots, so whoever comes second is
 * refused.
 *
 * Worker thread only: the events watch the calling thread (the one running
 * Lua), and the handler runs on it, synchronously, between two instructions
 * of the interpreter.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <linux/hw_breakpoint.h>
#include "nffi_internal.h"
#include "nffi_inspect.h"

#ifndef TRAP_PERF
#define TRAP_PERF 6
#endif
#define TRAP_PERF_ASYNC 1u     /* si_perf_flags: delivered late, not at the access */

static int fds[NFFI_WATCH_MAX];
static uintptr_t addrs[NFFI_WATCH_MAX];
static volatile uint64_t fd_traps[NFFI_WATCH_MAX];  /* ours, per event: health compares counts */
static int nwatch;
static int fault;               /* test switch: events open but are never enabled */
static volatile sig_atomic_t enabled;
static void (*trap_cb)(int late);
static struct sigaction prev_action;
static int handler_installed;
static volatile uint64_t traps;
static volatile uint64_t late_traps;
static int last_error;

/* si_perf_data and si_perf_flags follow si_addr (glibc's siginfo_t has no names
 * for them): the event's sig_data, which is the watched address, and flags. */
static void perf_fields(const siginfo_t *si, uint64_t *data, uint32_t *flags)
{
    const char *base = (const char *)&si->si_addr + sizeof(void *);
    unsigned long d;
    memcpy(&d, base, sizeof(d));
    memcpy(flags, base + sizeof(d) + sizeof(uint32_t), sizeof(*flags));
    *data = d;
}

static int is_ours(uint64_t data)
{
    for (int i = 0; i < nwatch; i++)
        if (addrs[i] == data) {
            fd_traps[i]++;
            return 1;
        }
    return 0;
}

static void on_sigtrap(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    uint64_t data = 0;
    uint32_t flags = 0;
    if (si != NULL && si->si_code == TRAP_PERF)
        perf_fields(si, &data, &flags);
    if (si != NULL && si->si_code == TRAP_PERF && is_ours(data)) {
        traps++;
        int late = (flags & TRAP_PERF_ASYNC) != 0;
        if (late)
            late_traps++;
        nffi__watch_disable();
        if (trap_cb != NULL)
            trap_cb(late);
        errno = saved;
        return;
    }
    errno = saved;
    /* not ours: whatever handled SIGTRAP before us does */
    if ((prev_action.sa_flags & SA_SIGINFO) && prev_action.sa_sigaction != NULL) {
        prev_action.sa_sigaction(sig, si, uc);
    } else if (prev_action.sa_handler != SIG_IGN && prev_action.sa_handler != SIG_DFL &&
               prev_action.sa_handler != NULL) {
        prev_action.sa_handler(sig);
    } else if (si != NULL && si->si_code == TRAP_PERF) {
        /* an event of ours already closed: nothing to do */
    } else if (prev_action.sa_handler != SIG_IGN) {
        signal(SIGTRAP, SIG_DFL);
        raise(SIGTRAP);
    }
}

static int install_handler(void)
{
    if (handler_installed)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigtrap;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    /* jit.profile's SIGPROF handler updates the dispatch table too: not nested in ours */
    sigaddset(&sa.sa_mask, SIGPROF);
    if (sigaction(SIGTRAP, &sa, &prev_action) != 0)
        return -errno;
    handler_installed = 1;
    return 0;
}

NFFI_HIDDEN void nffi__watch_on_trap(void (*cb)(int late))
{
    trap_cb = cb;
}

NFFI_HIDDEN void nffi__watch_close(void)
{
    enabled = 0;
    for (int i = 0; i < nwatch; i++)
        close(fds[i]);
    nwatch = 0;
}

/* Watches reads and writes of the 4 bytes at each address (4-aligned), on this
 * thread, disabled until nffi__watch_enable. 0, or -errno with nothing watched. */
NFFI_HIDDEN int nffi__watch_set(const uintptr_t *at, int n)
{
    nffi__watch_close();
    if (n > NFFI_WATCH_MAX)
        return last_error = -ENOSPC;
    int rc = install_handler();
    if (rc != 0)
        return last_error = rc;
    for (int i = 0; i < n; i++) {
        if ((at[i] & 3) != 0) {
            nffi__watch_close();
            return last_error = -EINVAL;
        }
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.type = PERF_TYPE_BREAKPOINT;
        a.size = sizeof(a);
        a.bp_type = HW_BREAKPOINT_RW;   /* x86 has no read-only data watchpoint */
        a.bp_addr = at[i];
        a.bp_len = HW_BREAKPOINT_LEN_4;
        a.sample_period = 1;
        a.disabled = 1;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        a.sigtrap = 1;
        a.remove_on_exec = 1;           /* required with sigtrap */
        a.sig_data = at[i];
        int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            nffi__watch_close();
            return last_error = rc;
        }
        fds[i] = fd;
        addrs[i] = at[i];
        fd_traps[i] = 0;
        nwatch = i + 1;
    }
    last_error = 0;
    return 0;
}

/* Async-signal-safe, like nffi__watch_disable. */
NFFI_HIDDEN int nffi__watch_enable(void)
{
    if (nwatch == 0)
        return -ENOENT;
    if (fault) {
        enabled = 1;            /* what a machine that never delivers looks like */
        return 0;
    }
    for (int i = 0; i < nwatch; i++) {
        if (ioctl(fds[i], PERF_EVENT_IOC_ENABLE, 0) != 0) {
            int rc = -errno;
            nffi__watch_disable();
            return last_error = rc;
        }
    }
    enabled = 1;
    return 0;
}

NFFI_HIDDEN void nffi__watch_disable(void)
{
    if (!enabled)
        return;
    enabled = 0;
    if (fault)
        return;
    for (int i = 0; i < nwatch; i++)
        ioctl(fds[i], PERF_EVENT_IOC_DISABLE, 0);
}

/* The tracer of this process, from /proc/self/status (0: none or unknown). */
static long tracer_pid(void)
{
    char buf[2048];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *t = strstr(buf, "\nTracerPid:");
    return t != NULL ? strtol(t + 11, NULL, 10) : 0;
}

/* Whether traps can still reach on_sigtrap, synchronously. 0, or -1 with why
 * (a fixed phrase and a detail) in buf. Cheap enough for every service tick:
 * one sigaction, one sigmask and one /proc read, plus a read per event. */
NFFI_HIDDEN int nffi__watch_health(char *buf, size_t size)
{
    struct sigaction cur;
    sigset_t mask;
    long tracer = tracer_pid();
    if (tracer != 0) {
        snprintf(buf, size, "a tracer is attached to the worker (pid %ld): traps go to it first", tracer);
        return -1;
    }
    if (handler_installed && sigaction(SIGTRAP, NULL, &cur) == 0 &&
        (!(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_sigtrap)) {
        snprintf(buf, size, "another SIGTRAP handler replaced the agent's");
        return -1;
    }
    if (pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && sigismember(&mask, SIGTRAP)) {
        snprintf(buf, size, "SIGTRAP is blocked on the worker thread: traps would come late");
        return -1;
    }
    for (int i = 0; i < nwatch && !fault; i++) {
        uint64_t count;
        if (read(fds[i], &count, sizeof(count)) == (ssize_t)sizeof(count) && count > fd_traps[i]) {
            snprintf(buf, size, "a watchpoint fired %llu times but the agent saw %llu traps",
                     (unsigned long long)count, (unsigned long long)fd_traps[i]);
            return -1;
        }
    }
    return 0;
}

/* Test switch (nffi_watch_fault): events open as usual and are never enabled,
 * so no trap comes: the self-check must catch it and keep the call hook. */
NFFI_EXPORT void nffi_watch_fault(int on)
{
    fault = on != 0;
}

/* Test switch for the part of the check no machine can fake: a trap as if
 * the hardware had delivered one at this moment, on the first enabled event
 * (or none). With nffi_watch_fault(1) it proves the rest of the chain on
 * every machine. */
NFFI_EXPORT int nffi_watch_emulate_trap(void)
{
    if (!enabled || nwatch == 0)
        return 0;
    traps++;
    fd_traps[0]++;
    nffi__watch_disable();
    if (trap_cb != NULL)
        trap_cb(0);
    return 1;
}

NFFI_HIDDEN int nffi__watch_faulty(void)
{
    return fault;
}

/*
 * The machine's answer, in C alone: a watchpoint on a word of ours, one read,
 * and whether the trap came before the next statement. 1 delivered, 0 the
 * event opened but no trap came, -errno refused. For tests and diagnostics:
 * the agent's own check (src/hook_watch.c) goes through the interpreter as
 * well.
 * Uses and then closes this thread's events: not while watching.
 */
NFFI_EXPORT int nffi_watch_probe(void)
{
    static volatile uint32_t word[2] __attribute__((aligned(8)));
    uintptr_t at = (uintptr_t)&word[0];
    if (nwatch > 0)
        return -EBUSY;
    void (*cb)(int) = trap_cb;
    trap_cb = NULL;
    int rc = nffi__watch_set(&at, 1);
    if (rc == 0) {
        uint64_t before = fd_traps[0];
        rc = nffi__watch_enable();
        if (rc == 0) {
            uint32_t v = word[0];
            (void)v;
            rc = fd_traps[0] != before;
        }
        nffi__watch_close();
    }
    trap_cb = cb;
    return rc;
}

NFFI_HIDDEN int nffi__watch_count(void)
{
    return nwatch;
}

NFFI_HIDDEN int nffi__watch_enabled(void)
{
    return enabled;
}

NFFI_EXPORT uint64_t nffi_watch_traps(void)
{
    return traps;
}

NFFI_EXPORT uint64_t nffi_watch_late_traps(void)
{
    return late_traps;
}

/* The last failure to set or enable watchpoints, as -errno (0: none). */
NFFI_EXPORT int nffi_watch_error(void)
{
    return last_error;
}
