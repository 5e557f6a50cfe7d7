/*
 * The breakpoint hook's counters: what Agent.getStats shows as
 * breakpoints.native. Each is written by the file that counts it (see
 * struct nffi__hook_counts) and only read here; nffi_hook_get_stats adds the
 * hook's state, through the getters of the files that keep it.
 *
 * Worker thread only, like the hook; plain reads.
 */
#include "hook_internal.h"
#include "nffi.h"

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

/* ---- one getter per counter: what the agent read before nffi_hook_get_stats,
 * kept until it reads the struct instead ---- */

/* Every hook call, lines and others. */
NFFI_EXPORT uint64_t nffi_hook_calls(void)
{
    return nffi__hook_count.calls;
}

NFFI_EXPORT uint64_t nffi_hook_matches(void)
{
    return nffi__hook_count.matches;
}

NFFI_EXPORT uint64_t nffi_hook_errors(void)
{
    return nffi__hook_count.errors;
}

/* Resumes of coroutines the call hook looked into (not counted inside before). */
NFFI_EXPORT uint64_t nffi_hook_resumes(void)
{
    return nffi__hook_count.resumes;
}

NFFI_EXPORT uint64_t nffi_hook_repeats(void)
{
    return nffi__hook_count.repeats;
}

/* Hits dropped in the hook, every line, since the library loaded. */
NFFI_EXPORT uint64_t nffi_hook_muted(void)
{
    return nffi__hook_count.muted;
}

/* Calls that found the hook removed and put it back (watchpoint traps). */
NFFI_EXPORT uint64_t nffi_hook_watch_entries(void)
{
    return nffi__hook_count.watch_entries;
}

NFFI_EXPORT uint64_t nffi_hook_watch_checks(void)
{
    return nffi__hook_count.watch_checks;
}

NFFI_EXPORT long nffi_hook_watch_check_us(void)
{
    return nffi__hook_count.watch_check_us;
}

NFFI_EXPORT long nffi_hook_heap_objects(void)
{
    return nffi__hook_count.heap_objects;
}

NFFI_EXPORT long nffi_hook_heap_walk_us(void)
{
    return nffi__hook_count.heap_walk_us;
}

NFFI_EXPORT long nffi_hook_heap_slices(void)
{
    return nffi__hook_count.heap_slices;
}

/* The longest slice of the last heap walk, µs of the worker's CPU. */
NFFI_EXPORT long nffi_hook_heap_slice_max_us(void)
{
    return nffi__hook_count.heap_slice_max_us;
}
