/* Example runtime: answers every request with its exact bytes. cfg: the number
 * of threads polling the queue (default ECHO_THREADS: 1 for libnffi_echo, 4 for
 * libnffi_echo_mt, which is built from this file too). */
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

#ifndef ECHO_THREADS
#define ECHO_THREADS 1
#endif

int libffi_init(char *cfg, void *tq)
{
    long n = cfg != NULL && *cfg != '\0' ? strtol(cfg, NULL, 10) : ECHO_THREADS;
    if (n < 1 || n > 256)
        n = ECHO_THREADS;
    for (long i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, echo_loop, tq) != 0)
            return i == 0 ? 1 : 0;  /* fewer threads still serve the queue */
        pthread_detach(th);
    }
    return 0;
}
