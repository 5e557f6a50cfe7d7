/*
 * For `npm run bench -- breakpoints`: one hardware watchpoint, enabled on the
 * calling thread, on a word nothing reads, and no hook. What the platform
 * charges a thread for having a debug register in use (the floor under the
 * agent's watching, native/src/watch.c): on bare metal about nothing; in a
 * virtual machine the hypervisor may switch debug registers on every exit.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <linux/hw_breakpoint.h>

static volatile uint32_t untouched[4];
static int fd = -1;

/* 0 (or the fd when turned on), -1 when perf_event_open refused. */
int bench_idle_watchpoint(int on)
{
    if (on && fd < 0) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.type = PERF_TYPE_BREAKPOINT;
        a.size = sizeof(a);
        a.bp_type = HW_BREAKPOINT_RW;
        a.bp_addr = (uintptr_t)&untouched[1];
        a.bp_len = HW_BREAKPOINT_LEN_4;
        a.sample_period = 1;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
        return fd;
    }
    if (!on && fd >= 0) {
        close(fd);
        fd = -1;
    }
    return 0;
}
