/*
 * Borrowed requests. nffi_task_submit_borrowed keeps the caller's pointer
 * and the poller that takes the task copies the bytes into it, on its own
 * CPU, instead of the worker copying them at submit. At 4 KiB x 32 with the
 * worker and its pollers on different CPUs, the worker's copy was a tenth of
 * its time per call: it wrote into a recycled buffer whose lines the poller
 * had read last, so each one crossed CPUs twice. The runtime still gets a
 * private, writable copy, as the lua-resty-ffi ABI promises.
 *
 * The caller keeps the bytes alive until the task is freed. It knows when,
 * except for a task abandoned while a runtime thread or the done list held
 * it (nffi_task_abandon returned 0): libnffi frees that one later, in a drain
 * the caller does not see. Those ids are noted here for nffi_borrow_freed.
 * When the caller's memory goes for good with tasks still live (the worker's
 * Lua state closing at exit), nffi_borrow_quiesce copies what no poller took.
 * Worker thread only, but for nffi__borrow_copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nffi_internal.h"

static uint64_t *nffi__freed_ids;   /* ids freed since the caller last asked */
static int nffi__freed_n, nffi__freed_cap;

void nffi__borrow_note_freed(const nffi_task *t)
{
    if (nffi__freed_n == nffi__freed_cap) {
        int cap = nffi__freed_cap ? nffi__freed_cap * 2 : 16;
        uint64_t *ids = realloc(nffi__freed_ids, (size_t)cap * sizeof(*ids));
        /* Unnoted, the caller keeps the bytes for good: a leak, never a
         * runtime reading freed memory. */
        if (ids == NULL)
            return;
        nffi__freed_ids = ids;
        nffi__freed_cap = cap;
    }
    nffi__freed_ids[nffi__freed_n++] = t->id;
}

NFFI_EXPORT int nffi_borrow_freed(uint64_t *out, int max)
{
    if (out == NULL || max <= 0)
        return 0;
    int n = nffi__freed_n < max ? nffi__freed_n : max;
    /* from the end: order does not matter to the caller, and nothing moves */
    for (int i = 0; i < n; i++)
        out[i] = nffi__freed_ids[--nffi__freed_n];
    if (nffi__freed_n == 0 && nffi__freed_cap > 64) {
        free(nffi__freed_ids);
        nffi__freed_ids = NULL;
        nffi__freed_cap = 0;
    }
    return n;
}

/* Tests (test_borrow.c): how long a poller waits before copying, to hold
 * it where nffi_borrow_quiesce must wait for it. 0 outside tests. */
int nffi__borrow_copy_delay_us;

/* The caller's bytes into the task; clearing `borrowed` last (release)
 * tells the worker the copy is whole. Whoever calls it owns req[] then. */
static void nffi__copy_in(nffi_task *t)
{
    memcpy(t->req, t->borrowed, t->req_len);
    t->req[t->req_len] = '\0';
    __atomic_store_n(&t->borrowed, NULL, __ATOMIC_RELEASE);
}

/* The runtime thread that polled t (POLLED: only it writes req[] now),
 * before handing it out. */
void nffi__borrow_copy(nffi_task *t)
{
    int delay = __atomic_load_n(&nffi__borrow_copy_delay_us, __ATOMIC_RELAXED);
    if (delay > 0) {
        struct timespec ts = {0, (long)delay * 1000};
        nanosleep(&ts, NULL);
    }
    nffi__copy_in(t);
}

NFFI_EXPORT int nffi_borrow_quiesce(void)
{
    int waited = 0, copied = 0;
    for (nffi_task *t = nffi__live.head; t != NULL; t = t->gnext) {
        if (__atomic_load_n(&t->borrowed, __ATOMIC_ACQUIRE) == NULL)
            continue;
        nffi_runtime *rt = t->rt;
        /* staged tasks are the worker's alone; a queued one is PENDING
         * while poll has not moved it, decided under qlock */
        int staged = nffi__task_staged(t);
        if (!staged)
            pthread_mutex_lock(&rt->qlock);
        if (staged || NFFI_LOAD(&t->state) == NFFI_TASK_PENDING) {
            nffi__copy_in(t);
            copied++;
        }
        if (!staged)
            pthread_mutex_unlock(&rt->qlock);
        /* POLLED: its poller is copying; a memcpy's time, unless the thread
         * lost its CPU */
        while (__atomic_load_n(&t->borrowed, __ATOMIC_ACQUIRE) != NULL) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
            waited = 1;
        }
    }
    /* rare (a waiter gone with its task still queued at exit): worth a line
     * in nginx's error log, where a worker's stderr goes */
    if (copied > 0)
        fprintf(stderr, "nffi: %d lent request%s no runtime thread had taken copied before the Lua state closed\n",
                copied, copied == 1 ? "" : "s");
    return waited;
}
