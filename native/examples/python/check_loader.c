/* check_nffi_python: libnffi_python and nffi_py.py without nginx, built with
 * ASan/UBSan together with libnffi's sources (the responses Python mallocs
 * are freed by libnffi here, bounds checked on both sides).
 *   check_nffi_python <libnffi_python.so> <dir of nffi_echo_py.py>
 * The main thread plays the nginx worker, as in native/test/test_nffi.c.
 * Prints "check_nffi_python: N passed" and exits 0, or names each failure. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "nffi.h"

static int passed, failed;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (cond) {                                                             \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            fprintf(stderr, "check_nffi_python: FAILED %s:%d: %s\n", __FILE__, \
                    __LINE__, #cond);                                           \
        }                                                                       \
    } while (0)

#define SEC 1000000000LL

static int threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return n;
}

static int wait_threads(int want, int64_t timeout_ns)
{
    int64_t deadline = nffi_now_ns() + timeout_ns;
    while (threads_now() != want && nffi_now_ns() < deadline)
        usleep(1000);
    return threads_now();
}

/* Submits one request and waits for its result. The response is copied to
 * out (NUL-terminated, at most max - 1 bytes); returns the rc, or -999. */
static int call(nffi_runtime *rt, const char *req, size_t len, char *out, size_t max,
                size_t *out_len)
{
    int status = 0;
    nffi_task *t = nffi_task_submit(rt, "m", 1, req, len, 0, &status);
    if (t == NULL)
        return -999;
    nffi_task *got = NULL;
    int64_t deadline = nffi_now_ns() + 20 * SEC;
    while (nffi_drain(&got, 1) == 0 && nffi_now_ns() < deadline)
        usleep(50);
    if (got != t)
        return -999;
    char *rsp = NULL;
    size_t rl = 0;
    int rc = nffi_task_result(t, &rsp, &rl);
    size_t n = rl < max - 1 ? rl : max - 1;
    if (rsp != NULL)
        memcpy(out, rsp, n);
    out[n] = '\0';
    *out_len = rl;
    nffi_task_release(t);
    return rc;
}

static int call_text(nffi_runtime *rt, const char *req, char *out, size_t max)
{
    size_t len;
    return call(rt, req, strlen(req), out, max, &len);
}

/* Echoes of several sizes with NULs inside, each compared byte for byte. */
static void check_echoes(nffi_runtime *rt)
{
    static const size_t sizes[] = {0, 1, 100, 4096, 65536, 1 << 20};
    const size_t n_sizes = sizeof(sizes) / sizeof(sizes[0]);
    const size_t max = (1 << 20) + 64;
    char *req = malloc(max), *out = malloc(max);
    int bad = 0;
    for (int i = 0; i < 120; i++) {
        size_t size = sizes[i % n_sizes];
        memcpy(req, "echo\n", 5);
        for (size_t k = 0; k < size; k++)
            req[5 + k] = (char)((k * 7 + (size_t)i) % 3 == 0 ? 0 : k + (size_t)i);
        size_t got_len = 0;
        int rc = call(rt, req, size + 5, out, max, &got_len);
        if (rc != 0 || got_len != size || memcmp(out, req + 5, size) != 0)
            bad++;
    }
    CHECK(bad == 0);
    free(req);
    free(out);
}

static void check_errors(nffi_runtime *rt)
{
    char out[512];
    CHECK(call_text(rt, "fail\nboom", out, sizeof(out)) == 1 && strcmp(out, "error: boom") == 0);
    CHECK(call_text(rt, "raise\nit broke", out, sizeof(out)) == 1 &&
          strcmp(out, "RuntimeError: it broke") == 0);
    CHECK(call_text(rt, "nope\nx", out, sizeof(out)) == 1 &&
          strcmp(out, "unknown method 'nope' (known: echo, fail, raise, slow)") == 0);
    CHECK(call_text(rt, "slow\n5;later", out, sizeof(out)) == 0 && strcmp(out, "later") == 0);
    CHECK(call_text(rt, "slow\n-1;x", out, sizeof(out)) == 1 &&
          strcmp(out, "ValueError: slow: ms must be 0..600000, got -1") == 0);
}

/* Many tasks queued at once, answered by every poller. */
static void check_burst(nffi_runtime *rt)
{
    enum { N = 200 };
    nffi_task *tasks[N], *got[N];
    char req[64];
    int status, ok = 1;
    for (int i = 0; i < N; i++) {
        int len = snprintf(req, sizeof(req), "echo\n%d", i);
        tasks[i] = nffi_task_submit(rt, "echo", 4, req, (size_t)len, 0, &status);
        ok = ok && tasks[i] != NULL;
    }
    CHECK(ok);
    int n = 0;
    int64_t deadline = nffi_now_ns() + 20 * SEC;
    while (ok && n < N && nffi_now_ns() < deadline) {
        int k = nffi_drain(got + n, N - n);
        n += k;
        if (k == 0)
            usleep(100);
    }
    CHECK(n == N);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char *rsp;
        size_t rl;
        int rc = nffi_task_result(got[i], &rsp, &rl);
        int want = -1;
        if (rc != 0 || rsp == NULL || sscanf(rsp, "%d", &want) != 1 || tasks[want] != got[i])
            bad++;
        nffi_task_release(got[i]);
    }
    CHECK(bad == 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: check_nffi_python <libnffi_python.so> <python module dir>\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    int (*init)(char *, void *) = lib != NULL ? (int (*)(char *, void *))dlsym(lib, "libffi_init")
                                              : NULL;
    if (init == NULL) {
        fprintf(stderr, "check_nffi_python: %s\n", dlerror());
        return 2;
    }
    char cfg[PATH_MAX + 64];

    /* a bad cfg refuses before CPython starts */
    nffi_runtime *bad = nffi_runtime_new("py_bad", 0);
    CHECK(init(strcpy(cfg, "nffi_echo_py"), bad) == 1);
    nffi_runtime_finish(bad);

    int base = threads_now();
    nffi_runtime *rt = nffi_runtime_new("py_check", 0);
    snprintf(cfg, sizeof(cfg), "%s/nffi_echo_py,init,pollers=3;label=py-check", argv[2]);
    CHECK(init(cfg, rt) == 0);
    CHECK(threads_now() == base + 3);
    memset(cfg, 'x', sizeof(cfg) - 1);     /* the binding's cfg buffer does not outlive init */
    check_echoes(rt);
    check_errors(rt);
    check_burst(rt);
    CHECK(nffi_runtime_finish(rt) == 0);
    CHECK(wait_threads(base, 5 * SEC) == base);

    /* a second runtime in the same process reuses the interpreter */
    nffi_runtime *again = nffi_runtime_new("py_again", 0);
    snprintf(cfg, sizeof(cfg), "%s/nffi_echo_py,init,pollers=1", argv[2]);
    CHECK(init(cfg, again) == 0);
    char out[64];
    CHECK(call_text(again, "echo\nagain", out, sizeof(out)) == 0 && strcmp(out, "again") == 0);
    nffi_runtime_finish(again);
    CHECK(wait_threads(base, 5 * SEC) == base);

    /* a process forked after CPython started refuses (its threads are gone) */
    pid_t child = fork();
    if (child == 0) {
        nffi_runtime *forked = nffi_runtime_new("py_forked", 0);
        _exit(init(cfg, forked) == 1 ? 0 : 1);
    }
    int st = 0;
    CHECK(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    if (failed == 0)
        printf("check_nffi_python: %d passed\n", passed);
    return failed == 0 ? 0 : 1;
}
