/* Between the Go and the C half of the Go example runtime (nffi_go.c). */
#ifndef NFFI_GO_H
#define NFFI_GO_H

/* libffi_init's return codes besides the cfg's (1, from Go) */
enum {
    NFFI_GO_INIT_NO_HOST = 2,  /* ngx_http_lua_ffi_* not in the process */
    NFFI_GO_INIT_FORKED = 3    /* loaded before fork: Go's threads are gone */
};

int libffi_init(char *cfg, void *tq);
void *nffi_go_poll(void *tq);
char *nffi_go_get_req(void *task, int *len);
void nffi_go_respond(void *task, int rc, char *rsp, int rsp_len);
void nffi_go_name_thread(void);

#endif
