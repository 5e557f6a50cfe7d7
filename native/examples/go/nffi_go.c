/* The C half of the Go example runtime: libffi_init itself, and the host's
 * ngx_http_lua_ffi_* functions, found with dlsym and called through pointers.
 *
 * Why dlsym, not undefined symbols left for the dynamic linker as the C
 * examples do (a c-shared build accepts those, Go 1.19 checked): the package
 * still builds as a program (`go build`, `go test` for its Go code), which a
 * reference to a function no library defines does not link; a host without
 * them gets a clear init error instead of the worker exiting in the lazy
 * binder ("symbol lookup error") at the first poll; and either name a
 * lua-resty-ffi host may export is taken.
 *
 * Why libffi_init is C: Go's runtime starts when the library is loaded, in
 * threads of the loading process. A process forked after that (an nginx worker
 * forked from a master that loaded the library in init_by_lua) has the
 * runtime's memory but none of its threads, and its first call into Go hangs
 * for good. The check that refuses there must not call Go. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nffi_go.h"
#include "_cgo_export.h"

typedef void *(*poll_fn)(void *tq);
typedef char *(*get_req_fn)(void *task, int *len);
typedef void (*respond_fn)(void *task, int rc, char *rsp, int rsp_len);

static poll_fn host_poll;
static get_req_fn host_get_req;
static respond_fn host_respond;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static int resolved;
static pid_t load_pid;

__attribute__((constructor)) static void record_load_pid(void)
{
    load_pid = getpid();
}

static void *host_sym(const char *prefix, const char *name)
{
    char sym[64];
    snprintf(sym, sizeof(sym), "%s%s", prefix, name);
    return dlsym(RTLD_DEFAULT, sym);
}

/* Either of the two names lua-resty-ffi hosts export. */
static void resolve(void)
{
    static const char *const prefixes[] = {"ngx_http_lua_ffi_", "ngx_http_lua_nonblocking_ffi_"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        void *poll = host_sym(prefixes[i], "task_poll");
        void *get_req = host_sym(prefixes[i], "get_req");
        void *respond = host_sym(prefixes[i], "respond");
        if (poll != NULL && get_req != NULL && respond != NULL) {
            host_poll = (poll_fn)poll;
            host_get_req = (get_req_fn)get_req;
            host_respond = (respond_fn)respond;
            resolved = 1;
            return;
        }
    }
}

int libffi_init(char *cfg, void *tq)
{
    pid_t pid = getpid();
    if (pid != load_pid) {
        /* stderr is nginx's error log */
        fprintf(stderr, "[nffi_go_echo] loaded in process %d, started in %d: a Go library must be "
                "loaded after fork, in the nginx worker (init_worker_by_lua or a handler), "
                "never in init_by_lua\n", (int)load_pid, (int)pid);
        return NFFI_GO_INIT_FORKED;
    }
    pthread_once(&resolve_once, resolve);
    if (!resolved) {
        fprintf(stderr, "[nffi_go_echo] ngx_http_lua_ffi_task_poll & co. are not in the process: "
                "load the runtime through nffi or lua-resty-ffi\n");
        return NFFI_GO_INIT_NO_HOST;
    }
    return nffiGoStart(cfg, tq);
}

void *nffi_go_poll(void *tq)
{
    return host_poll(tq);
}

char *nffi_go_get_req(void *task, int *len)
{
    return host_get_req(task, len);
}

void nffi_go_respond(void *task, int rc, char *rsp, int rsp_len)
{
    host_respond(task, rc, rsp, rsp_len);
}

void nffi_go_name_thread(void)
{
    pthread_setname_np(pthread_self(), "nffi_go_poll");
}
