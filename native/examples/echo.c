/* Example runtime: one thread answering every request with its exact bytes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The lua-resty-ffi ABI, resolved at load time from the host process. */
void *ngx_http_lua_ffi_task_poll(void *tq);
char *ngx_http_lua_ffi_get_req(void *task, int *len);
void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

static void *echo_loop(void *tq)
{
    void *task;
    while ((task = ngx_http_lua_ffi_task_poll(tq)) != NULL) {
        int len = 0;
        char *req = ngx_http_lua_ffi_get_req(task, &len);
        /* Always allocate so an empty request yields "" (len 0 => strlen). */
        char *rsp = malloc((size_t)len + 1);
        if (rsp == NULL) {
            ngx_http_lua_ffi_respond(task, 1, NULL, 0);
            continue;
        }
        memcpy(rsp, req, (size_t)len);
        rsp[len] = '\0';
        ngx_http_lua_ffi_respond(task, 0, rsp, len);
    }
    return NULL;
}

int libffi_init(char *cfg, void *tq)
{
    (void)cfg;
    pthread_t th;
    if (pthread_create(&th, NULL, echo_loop, tq) != 0)
        return 1;
    pthread_detach(th);
    return 0;
}
