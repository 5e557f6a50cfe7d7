/*
 * Borrowed requests. A runtime that promised to only read its requests
 * (lua: opts.readonly_request) gets the caller's bytes in place instead of a
 * copy: nffi_task_submit_borrowed keeps the pointer. At 4 KiB x 32 with the
 * worker and its pollers on different CPUs, the copy was a tenth of the
 * worker's time per call: it writes into a recycled buffer whose lines the
 * poller read last, so each one crosses CPUs twice.
 *
 * The caller keeps the bytes alive until the task is freed. It knows when,
 * except for a task abandoned while a runtime thread or the done list held
 * it (nffi_task_abandon returned 0): libnffi frees that one later, in a drain
 * the caller does not see. Those ids are noted here for nffi_borrow_freed.
 * Worker thread only, like every task's free.
 */
#include <stdlib.h>

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
