/* Example runtime written against the older "nonblocking" spelling of the
 * ABI: lib_nonblocking_ffi_init + ngx_http_lua_nonblocking_ffi_*. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void *ngx_http_lua_nonblocking_ffi_task_poll(void *tq);
char *ngx_http_lua_nonblocking_ffi_get_req(void *task, int *len);
void ngx_http_lua_nonblocking_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

static void *echo_loop(void *tq)
{
    void *task;
    while ((task = ngx_http_lua_nonblocking_ffi_task_poll(tq)) != NULL) {
        int len = 0;
        char *req = ngx_http_lua_nonblocking_ffi_get_req(task, &len);
        char *rsp = malloc((size_t)len + 1);
        if (rsp == NULL) {
            ngx_http_lua_nonblocking_ffi_respond(task, 1, NULL, 0);
            continue;
        }
        memcpy(rsp, req, (size_t)len);
        rsp[len] = '\0';
        ngx_http_lua_nonblocking_ffi_respond(task, 0, rsp, len);
    }
    return NULL;
}

int lib_nonblocking_ffi_init(char *cfg, void *tq)
{
    (void)cfg;
    pthread_t th;
    if (pthread_create(&th, NULL, echo_loop, tq) != 0)
        return 1;
    pthread_detach(th);
    return 0;
}
