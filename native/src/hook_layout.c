/*
 * What the hook knows of LuaJIT's object layout, and how it came to trust it.
 *
 * Functions are named by their bytecode address: a closure's pc field, found
 * by nffi_hook_calibrate on a closure and its prototype of the agent's own,
 * or a prototype's address plus the header size that calibration measured.
 * Nothing here is read from LuaJIT's headers (the host's LuaJIT may differ
 * from any we could build against): each offset is measured or checked in
 * the running VM before the hook relies on it.
 *
 * Worker thread only.
 */
#include "hook_internal.h"
#include "nffi_inspect.h"

NFFI_HIDDEN size_t nffi__pc_offset;
NFFI_HIDDEN size_t nffi__pc_size;
NFFI_HIDDEN uintptr_t nffi__proto_bc_delta;

/*
 * fn is a Lua closure made from proto (both live): finds the closure's pc field
 * (GC64 and 32-bit reference layouts) and the prototype header size. Returns
 * 1 when both are found, 0 when this LuaJIT's layout is not one we know.
 */
NFFI_EXPORT int nffi_hook_calibrate(const void *fn, const void *proto)
{
    static const size_t offsets[][2] = { { 32, 8 }, { 16, 4 } };
    if (fn == NULL || proto == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        uintptr_t bc = nffi__read_ptr((const char *)fn + offsets[i][0], offsets[i][1]);
        uintptr_t p = (uintptr_t)proto;
        if (bc > p && bc - p <= 256 && (bc - p) % 4 == 0) {
            nffi__pc_offset = offsets[i][0];
            nffi__pc_size = offsets[i][1];
            nffi__proto_bc_delta = bc - p;
            return 1;
        }
    }
    return 0;
}

/* The bytecode address that names a function: a closure or a prototype
 * (is_proto). Only after calibration. */
NFFI_HIDDEN uintptr_t nffi__bc_of(const void *obj, int is_proto)
{
    return is_proto ? (uintptr_t)obj + nffi__proto_bc_delta
                    : nffi__read_ptr((const char *)obj + nffi__pc_offset, nffi__pc_size);
}

/*
 * The direct frame read (nffi__frame_fn) reads L->base, checking L->top after
 * it against lua_gettop before base is read. That reading is compared with
 * lua_getinfo's answer on the first FAST_CHECKS calls and used only if it
 * always agreed.
 */
#define FAST_CHECKS 64
NFFI_HIDDEN int nffi__fast_state;
static int fast_checked;

/* top: lua_gettop(L) before lua_getinfo pushed fn. The base and top fields
 * are checked against it before base is ever dereferenced. */
NFFI_HIDDEN void nffi__fast_check(lua_State *L, int top, const void *fn)
{
    uintptr_t base = nffi__read_ptr((const char *)L + NFFI_HOOK_FAST_BASE_OFFSET, 8);
    uintptr_t stack_top = nffi__read_ptr((const char *)L + NFFI_HOOK_FAST_BASE_OFFSET + 8, 8);
    if (nffi__pc_size != 8 || fn == NULL || base == 0 || (base & 7) != 0 ||
        ((intptr_t)stack_top - (intptr_t)base) / 8 != (intptr_t)top + 1) {
        nffi__fast_state = -1;
        return;
    }
    if (nffi__frame_fn(L) != fn)
        nffi__fast_state = -1;
    else if (++fast_checked >= FAST_CHECKS)
        nffi__fast_state = 1;
}

/* The function of the frame the hook reports on: read from the frame where
 * that reading is trusted (a hook event's L->base is the frame's base), else
 * through lua_getinfo. */
NFFI_HIDDEN const void *nffi__event_fn(lua_State *L, lua_Debug *ar)
{
    if (nffi__fast_state == 1)
        return nffi__frame_fn(L);
    if (!lua_getinfo(L, "f", ar))
        return NULL;
    const void *fn = lua_topointer(L, -1);
    lua_settop(L, -2);
    return fn;
}

/* The call hook's direct frame read: 1 trusted, 0 still checking, -1 not used. */
NFFI_EXPORT int nffi_hook_fast(void)
{
    return nffi__fast_state;
}
