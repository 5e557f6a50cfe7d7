/*
 * The breakpoint hook's counters: what Agent.getStats shows as
 * breakpoints.native. Each is written by the file that counts it (see
 * struct nffi__hook_counts) and only read here.
 *
 * Worker thread only, like the hook; plain reads.
 */
#include "hook_internal.h"
#include "nffi.h"

NFFI_HIDDEN struct nffi__hook_counts nffi__hook_count;

/* ---- one getter per counter ---- */

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
