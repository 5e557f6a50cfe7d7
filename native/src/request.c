/*
 * The request a lua-nginx-module coroutine serves, for the inspector's
 * coroutine list (lua/nffi/inspect/coroutines_request.lua reads it).
 *
 * lua-nginx-module (OpenResty's LuaJIT) keeps a coroutine's
 * ngx_http_request_t* in the coroutine's exdata. LuaJIT copies the parent's
 * exdata into every new thread and lua_resetthread copies the main state's, so
 * many coroutines carry a request that is gone: a pending timer (its exdata is
 * set only when it fires) and a cached, reset thread hold the main state's,
 * which points at init_worker's freed fake request or at the last request that
 * ran a log or filter handler; a user coroutine keeps the request it was
 * created in. Nothing here can tell a live pointer from a dangling one: the
 * agent can (an anchored, started coroutine, see coroutines_request.lua), so
 * nffi_co_exdata only reads the lua_State, and only nffi_co_request
 * dereferences the request, for coroutines the agent has checked.
 *
 * lua_getexdata and the ngx_http_lua_ffi_* functions come from the host
 * process, weakly referenced like the hook's lua_* (src/hook_internal.h); the
 * prototypes are lua-nginx-module 0.10.23's (src/ngx_http_lua_req_method.c,
 * src/ngx_http_lua_variable.c), as resty.core's cdefs declare them.
 */
#include <lua.h>
#include "nffi_internal.h"
#include "nffi_inspect.h"

#pragma weak lua_getexdata
#pragma weak ngx_http_lua_ffi_req_get_method_name
#pragma weak ngx_http_lua_ffi_var_get

int ngx_http_lua_ffi_req_get_method_name(void *r, unsigned char **name, size_t *len);
int ngx_http_lua_ffi_var_get(void *r, unsigned char *name_data, size_t name_len,
                             unsigned char *lowcase_buf, int capture_id,
                             unsigned char **value, size_t *value_len, char **err);

static unsigned char uri_name[] = "request_uri";

NFFI_EXPORT int nffi_request_available(void)
{
    return lua_getexdata != NULL && ngx_http_lua_ffi_req_get_method_name != NULL &&
           ngx_http_lua_ffi_var_get != NULL;
}

NFFI_EXPORT const void *nffi_co_exdata(const void *co)
{
    if (co == NULL || lua_getexdata == NULL)
        return NULL;
    return lua_getexdata((lua_State *)co);
}

NFFI_EXPORT int nffi_co_request(const void *co, const char **method, size_t *method_len,
                                const char **uri, size_t *uri_len)
{
    /* var_get lowercases the name into this; one call at a time (worker thread) */
    static unsigned char lowcase[sizeof(uri_name)];
    unsigned char *m = NULL, *u = NULL;
    size_t mlen = 0, ulen = 0;
    char *err = NULL;

    *method = *uri = NULL;
    *method_len = *uri_len = 0;
    if (co == NULL || !nffi_request_available())
        return NFFI_EINVAL;
    void *r = lua_getexdata((lua_State *)co);
    if (r == NULL)
        return NFFI_REQ_NONE;
    /* both refuse a fake request (fd -1: timers) */
    if (ngx_http_lua_ffi_req_get_method_name(r, &m, &mlen) != 0)
        return NFFI_REQ_NONE;
    if (ngx_http_lua_ffi_var_get(r, uri_name, sizeof(uri_name) - 1, lowcase, 0,
                                 &u, &ulen, &err) != 0)
        u = NULL, ulen = 0;
    *method = (const char *)m;
    *method_len = m != NULL ? mlen : 0;
    *uri = (const char *)u;
    *uri_len = u != NULL ? ulen : 0;
    return NFFI_OK;
}
