/*
 * Muted lines, dropped by the hook (src/hook.c). A breakpoint over its rate
 * drops hits, and on a hot line that is most of them: the agent names such a
 * line here (nffi_hook_mute) with the functions of its one breakpoint and the
 * time its bucket has a token again, and until then a line event of that line
 * in one of those functions is counted here and goes no further: no Lua.
 * The agent takes the counts (nffi_hook_mute_take) into the breakpoint's hits
 * and drops. Only lines with one unconditional breakpoint and no --count are
 * muted: a condition decides whether an execution is a hit at all, and a
 * count must see every hit.
 *
 * Worker thread only.
 */
#include <time.h>
#include "hook_internal.h"
#include "nffi_inspect.h"

#define NFFI_HOOK_MAXMUTE 16
#define NFFI_HOOK_MUTEFNS 8
struct mute {
    int line;
    int nfns;
    double until;               /* CLOCK_REALTIME seconds, as ngx.now() */
    uint64_t dropped;
    uintptr_t bc[NFFI_HOOK_MUTEFNS];
};
static struct mute mutes[NFFI_HOOK_MAXMUTE];
NFFI_HIDDEN int nffi__nmutes;

static struct mute *mute_of(int line)
{
    for (int i = 0; i < nffi__nmutes; i++)
        if (mutes[i].line == line)
            return &mutes[i];
    return NULL;
}

/* 1 when this line event is a hit its breakpoint would drop: counted. */
NFFI_HIDDEN int nffi__mute_drop(lua_State *L, lua_Debug *ar, int line)
{
    struct mute *m = mute_of(line);
    if (m == NULL || m->nfns == 0)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if ((double)ts.tv_sec + ts.tv_nsec * 1e-9 >= m->until)
        return 0;
    /* a line event's function is a Lua function: its pc field names it */
    const char *fn = nffi__event_fn(L, ar);
    uintptr_t bc = fn != NULL ? nffi__read_ptr(fn + nffi__pc_offset, nffi__pc_size) : 0;
    int ours = 0;
    for (int i = 0; i < m->nfns && !ours; i++)
        ours = m->bc[i] == bc;
    if (ours) {
        m->dropped++;
        nffi__hook_count.muted++;
    }
    return ours;
}

/* Mutes line until the time until (CLOCK_REALTIME seconds); its functions
 * follow with nffi_hook_mute_fn. A line muted already keeps its functions and
 * count. 0, or NFFI_EFULL / NFFI_EINVAL (then nothing is muted). */
NFFI_EXPORT int nffi_hook_mute(int line, double until)
{
    struct mute *m = mute_of(line);
    if (m == NULL) {
        if (nffi__nmutes == NFFI_HOOK_MAXMUTE || nffi__pc_size == 0)
            return nffi__pc_size == 0 ? NFFI_EINVAL : NFFI_EFULL;
        m = &mutes[nffi__nmutes++];
        *m = (struct mute){ .line = line };
    }
    m->until = until;
    return NFFI_OK;
}

/* One function of the muted line's breakpoint: a closure or a prototype. */
NFFI_EXPORT int nffi_hook_mute_fn(int line, const void *obj, int is_proto)
{
    struct mute *m = mute_of(line);
    if (m == NULL || obj == NULL || m->nfns == NFFI_HOOK_MUTEFNS)
        return NFFI_EINVAL;
    m->bc[m->nfns++] = nffi__bc_of(obj, is_proto);
    return NFFI_OK;
}

/* The hits dropped here on line since the last take. */
NFFI_EXPORT uint64_t nffi_hook_mute_take(int line)
{
    struct mute *m = mute_of(line);
    if (m == NULL)
        return 0;
    uint64_t n = m->dropped;
    m->dropped = 0;
    return n;
}

/* Forgets the line (take its count first). */
NFFI_EXPORT void nffi_hook_unmute(int line)
{
    struct mute *m = mute_of(line);
    if (m != NULL)
        *m = mutes[--nffi__nmutes];
}
