/*
 * Repeated line events, dropped by the hook (src/hook.c) before a breakpoint
 * sees them. LuaJIT decides "new line" by comparing the pc with the
 * last pc its C frame saved, which anything run since overwrites: a Lua
 * callee's instructions, the call hook (which clears it for the line hook),
 * and a resume, which starts a new C frame with no pc saved. Back from a call,
 * or resumed after a yield, a frame's line is reported again: a loop body
 * ending in `count(x)` would hit twice per iteration, and `reply(rt:slow(req))`
 * once when the call starts and again when the response resumes the
 * coroutine there, whatever ran meanwhile. Neither is a new execution.
 * So for each frame on a breakpoint line we keep its slot (ar->i_ci), function
 * and line, and whether an event above the slot (a call, or a callee's line or
 * return) came since the frame's own last line event: the same line again in
 * the same slot and function after one is a repeat. The frame's next line
 * event on any other line, its return, any event below it (an unwind) and a
 * call into its slot (a tail call, or a new frame after an unwind nothing
 * showed) end the record.
 * Records are per coroutine, a stack of frames (NFFI_HOOK_LINEFRAMES in the
 * table, more on the heap: a recursion through a breakpoint line) in an
 * open-addressed table keyed by lua_State: no other coroutine evicts them and
 * neither a mask switch nor another install resets them, so a coroutine
 * suspended on a breakpoint line is known as such when it is resumed there,
 * however long it slept and whatever the hook did meanwhile. That takes every
 * call event (a C function that yields shows no other event), which every
 * mask of this hook has. A dead coroutine's records go when its lua_State is
 * reused (the first call of the new one is into a slot at or below them), or
 * all of them with nffi_hook_remove. A full table (or no memory) costs the
 * dedupe of one frame (a second hit), never a hit.
 *
 * Worker thread only.
 */
#include <stdlib.h>
#include <string.h>
#include "hook_internal.h"

#define NFFI_HOOK_LINEREC_BITS 12
#define NFFI_HOOK_LINEREC (1 << NFFI_HOOK_LINEREC_BITS)
#define NFFI_HOOK_LINEREC_MAX (NFFI_HOOK_LINEREC / 4 * 3)  /* probe runs stay short */
#define NFFI_HOOK_LINEFRAMES 4          /* per coroutine in the table; more: heap */
#define NFFI_HOOK_LINEFRAMES_MAX 65536  /* past it the outermost give way */
struct lineframe {
    const void *fn;             /* compared, never dereferenced */
    int ci;                     /* ar->i_ci: the frame's stack slot */
    int line;
    int left;                   /* an event above the frame came since its last line */
};
struct linerec {
    int n;                      /* frames, outermost first */
    int cap;                    /* of more */
    struct lineframe *more;     /* all the frames once they outgrow f (malloc) */
    struct lineframe f[NFFI_HOOK_LINEFRAMES];
};
static const void *linekeys[NFFI_HOOK_LINEREC];  /* lua_State: compared, never dereferenced */
static struct linerec linerecs[NFFI_HOOK_LINEREC];
static int nlinerecs;

static unsigned linerec_home(const void *L)
{
    return (unsigned)(((uint64_t)(uintptr_t)L * 0x9E3779B97F4A7C15ull) >>
                      (64 - NFFI_HOOK_LINEREC_BITS));
}

static struct linerec *linerec_of(const void *L)
{
    if (nlinerecs == 0)
        return NULL;
    for (unsigned i = linerec_home(L);; i = (i + 1) & (NFFI_HOOK_LINEREC - 1)) {
        if (linekeys[i] == L)
            return &linerecs[i];
        if (linekeys[i] == NULL)
            return NULL;
    }
}

static struct linerec *linerec_add(const void *L)
{
    if (nlinerecs >= NFFI_HOOK_LINEREC_MAX)
        return NULL;
    unsigned i = linerec_home(L);
    while (linekeys[i] != NULL)
        i = (i + 1) & (NFFI_HOOK_LINEREC - 1);
    linekeys[i] = L;
    linerecs[i].n = 0;
    linerecs[i].cap = 0;
    linerecs[i].more = NULL;
    nlinerecs++;
    return &linerecs[i];
}

static struct lineframe *linerec_frames(struct linerec *r)
{
    return r->more != NULL ? r->more : r->f;
}

/* 1 when one more frame fits (the frames go to the heap past the table's). */
static int linerec_room(struct linerec *r)
{
    int cap = r->more != NULL ? r->cap : NFFI_HOOK_LINEFRAMES;
    if (r->n < cap)
        return 1;
    if (cap >= NFFI_HOOK_LINEFRAMES_MAX)
        return 0;
    struct lineframe *more = malloc(sizeof(*more) * (size_t)cap * 2);
    if (more == NULL)
        return 0;
    memcpy(more, linerec_frames(r), sizeof(*more) * (size_t)r->n);
    free(r->more);
    r->more = more;
    r->cap = cap * 2;
    return 1;
}

/* The coroutine's last record went: out of the table by backward shift (the
 * keys after it in its probe run move up; no tombstones). */
static void linerec_drop(struct linerec *r)
{
    unsigned i = (unsigned)(r - linerecs), j = i;
    free(r->more);
    linekeys[i] = NULL;
    nlinerecs--;
    for (;;) {
        j = (j + 1) & (NFFI_HOOK_LINEREC - 1);
        if (linekeys[j] == NULL)
            return;
        unsigned home = linerec_home(linekeys[j]);
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;           /* its home lies after the hole: it stays */
        linekeys[i] = linekeys[j];
        linerecs[i] = linerecs[j];
        linekeys[j] = NULL;
        i = j;
    }
}

NFFI_HIDDEN void nffi__repeat_clear(void)
{
    for (int i = 0; i < NFFI_HOOK_LINEREC && nlinerecs > 0; i++) {
        if (linekeys[i] != NULL) {
            free(linerecs[i].more);
            linekeys[i] = NULL;
            nlinerecs--;
        }
    }
}

/* A call (into slot ar->i_ci) or a return (out of it): the frames recorded at
 * or above that slot are gone or replaced, and the one below has a callee. */
NFFI_HIDDEN void nffi__repeat_callret(lua_State *L, lua_Debug *ar)
{
    struct linerec *r = linerec_of(L);
    if (r == NULL)
        return;
    struct lineframe *f = linerec_frames(r);
    while (r->n > 0 && f[r->n - 1].ci >= ar->i_ci)
        r->n--;
    if (r->n == 0)
        linerec_drop(r);
    else
        f[r->n - 1].left = 1;
}

/* 1 when this line event only repeats the line its frame is on. */
NFFI_HIDDEN int nffi__repeat_line(lua_State *L, lua_Debug *ar, int line, int is_bp_line)
{
    struct linerec *r = linerec_of(L);
    int ci = ar->i_ci;
    if (r != NULL) {
        struct lineframe *f = linerec_frames(r);
        while (r->n > 0 && f[r->n - 1].ci > ci)
            r->n--;             /* returned, or unwound */
        struct lineframe *top = r->n > 0 ? &f[r->n - 1] : NULL;
        if (top != NULL && top->ci == ci) {
            if (top->left && top->line == line &&
                (!is_bp_line || top->fn == nffi__event_fn(L, ar))) {
                top->left = 0;
                return 1;
            }
            r->n--;             /* on another line, or on this one again */
        } else if (top != NULL) {
            top->left = 1;      /* a callee's line */
        }
        if (r->n == 0 && !is_bp_line) {
            linerec_drop(r);
            return 0;
        }
    }
    if (!is_bp_line || (r == NULL && (r = linerec_add(L)) == NULL))
        return 0;
    if (!linerec_room(r)) {
        struct lineframe *f = linerec_frames(r);
        memmove(f, f + 1, sizeof(*f) * (size_t)(r->n - 1));  /* the outermost gives way */
        r->n--;
    }
    linerec_frames(r)[r->n++] =
        (struct lineframe){ .fn = nffi__event_fn(L, ar), .ci = ci, .line = line, .left = 0 };
    return 0;
}

