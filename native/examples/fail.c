/* Example runtime: every request fails with rc = cfg (default 1) and the body
 * "error: " followed by the request. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void *ngx_http_lua_ffi_task_poll(void *tq);
char *ngx_http_lua_ffi_get_req(void *task, int *len);
void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

struct fail_rt {
    void *tq;
    int rc;
};

static void *fail_loop(void *arg)
{
    struct fail_rt *f = arg;
    static const char prefix[] = "error: ";
    const size_t plen = sizeof(prefix) - 1;
    void *task;
    while ((task = ngx_http_lua_ffi_task_poll(f->tq)) != NULL) {
        int len = 0;
        char *req = ngx_http_lua_ffi_get_req(task, &len);
        char *rsp = malloc(plen + (size_t)len + 1);
        if (rsp == NULL) {
            ngx_http_lua_ffi_respond(task, f->rc, NULL, 0);
            continue;
        }
        memcpy(rsp, prefix, plen);
        memcpy(rsp + plen, req, (size_t)len);
        rsp[plen + (size_t)len] = '\0';
        ngx_http_lua_ffi_respond(task, f->rc, rsp, (int)plen + len);
    }
    free(f);
    return NULL;
}

int libffi_init(char *cfg, void *tq)
{
    struct fail_rt *f = malloc(sizeof(*f));
    if (f == NULL)
        return 1;
    f->tq = tq;
    f->rc = cfg != NULL && *cfg != '\0' ? (int)strtol(cfg, NULL, 10) : 1;
    pthread_t th;
    if (pthread_create(&th, NULL, fail_loop, f) != 0) {
        free(f);
        return 1;
    }
    pthread_detach(th);
    return 0;
}
