/*
 * The breakpoint hook's counters: what Agent.getStats shows as
 * breakpoints.native. Each is written by the file that counts it (see
 * struct nffi__hook_counts) and only read here, by nffi_hook_get_stats (they
 * have no getters of their own); it adds the hook's state, through the
 * getters of the files that keep it.
 *
 * Worker thread only, like the hook; plain reads.
 */
#include "hook_internal.h"
#include "nffi_inspect.h"

NFFI_HIDDEN struct nffi__hook_counts nffi__hook_count;

NFFI_EXPORT int nffi_hook_get_stats(void *L, nffi_hook_stats *out)
{
    if (out == NULL)
        return NFFI_EINVAL;
    const struct nffi__hook_counts *c = &nffi__hook_count;
    *out = (nffi_hook_stats){
        .calls = c->calls,
        .matches = c->matches,
        .errors = c->errors,
        .resumes = c->resumes,
        .repeats = c->repeats,
        .muted = c->muted,
        .watch_entries = c->watch_entries,
        .watch_traps = nffi_watch_traps(),
        .watch_late = nffi_watch_late_traps(),
        .watch_checks = c->watch_checks,
        .watch_check_us = c->watch_check_us,
        .heap_objects = c->heap_objects,
        .heap_walk_us = c->heap_walk_us,
        .heap_slices = c->heap_slices,
        .heap_slice_max_us = c->heap_slice_max_us,
        .watch_reason = nffi_hook_watch_reason(),
        .mask = nffi_hook_mask(L),
        .inside = nffi_hook_inside(),
        .fast = nffi_hook_fast(),
        .watching = nffi_hook_watching(),
        .watch_ok = nffi_hook_watch_ok(),
    };
    return NFFI_OK;
}
