/* Example runtime: echo after a delay (cfg: default delay in ms, 100 if absent;
 * a request "delay=<ms>;rest" echoes "rest" after <ms>; "hold=<ms>;rest" makes
 * the poller itself sleep <ms> before answering, so later tasks stay queued —
 * a stand-in for a runtime that falls behind; "gate=<ms>;rest" holds the
 * poller the same way until an "open;rest" request reaches any runtime of this
 * library in the process (or <ms> pass), so a test can keep a queue full for
 * as long as it needs and then let it drain; "scribble;rest" echoes "rest"
 * and then overwrites its whole request, as the ABI allows). One thread polls and
 * files tasks in a due-time min-heap; one responder thread sleeps until the
 * earliest is due, so thousands of concurrent delays cost two threads. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *ngx_http_lua_ffi_task_poll(void *tq);
char *ngx_http_lua_ffi_get_req(void *task, int *len);
void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len);

struct due {
    int64_t at_ns;
    uint64_t seq;           /* keeps equal due times in arrival order */
    void *task;
    int off;                /* where the echoed body starts in the request */
};

struct slow_rt {
    /* mu guards the heap, n/cap, seq and closing; cv wakes the responder
     * when an earlier deadline arrives or the poller is done. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct due *heap;
    size_t n, cap;
    uint64_t seq;
    int closing;
    int refs;               /* atomic: the last of the two threads frees */
    long default_ms;
    void *tq;
};

/* gate_mu guards gate_gen, bumped by every "open" request; gate_cv wakes the
 * pollers held in a gate. Process-wide: "open" is sent to another runtime of
 * this library, since the gated runtime's only poller is the one held. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static uint64_t gate_gen;

static void gate_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&gate_cv, &ca);
    pthread_condattr_destroy(&ca);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int earlier(const struct due *a, const struct due *b)
{
    return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

static int heap_push(struct slow_rt *s, struct due d)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct due *h = realloc(s->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        s->heap = h;
        s->cap = cap;
    }
    size_t i = s->n++;
    while (i > 0 && earlier(&d, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = d;
    return 0;
}

static struct due heap_pop(struct slow_rt *s)
{
    struct due top = s->heap[0], last = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n)
            break;
        if (c + 1 < s->n && earlier(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!earlier(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n > 0)
        s->heap[i] = last;
    return top;
}

static void release(struct slow_rt *s)
{
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->heap);
    free(s);
}

/* "<key>=<digits>;" prefix -> its number of ms and the body offset; else dflt. */
static long parse_ms(const char *req, int len, const char *key, long dflt, int *off)
{
    int k = (int)strlen(key);
    *off = 0;
    if (len < k + 2 || memcmp(req, key, (size_t)k) != 0 || req[k] != '=')
        return dflt;
    long ms = 0;
    int i = k + 1;
    for (; i < len && req[i] >= '0' && req[i] <= '9'; i++)
        ms = ms < 100000000 ? ms * 10 + (req[i] - '0') : ms;
    if (i == k + 1 || i >= len || req[i] != ';')
        return dflt;
    *off = i + 1;
    return ms;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Waits until the next "open", at most ms. */
static void gate_wait(long ms)
{
    int64_t at = now_ns() + (int64_t)ms * 1000000;
    struct timespec ts = {at / 1000000000, at % 1000000000};
    pthread_mutex_lock(&gate_mu);
    uint64_t gen = gate_gen;
    while (gate_gen == gen && pthread_cond_timedwait(&gate_cv, &gate_mu, &ts) == 0) {
    }
    pthread_mutex_unlock(&gate_mu);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_gen++;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void respond_echo(void *task, int off)
{
    int len = 0;
    char *req = ngx_http_lua_ffi_get_req(task, &len);
    size_t n = (size_t)(len - off);
    char *rsp = malloc(n + 1);
    if (rsp == NULL) {
        ngx_http_lua_ffi_respond(task, 1, NULL, 0);
        return;
    }
    memcpy(rsp, req + off, n);
    rsp[n] = '\0';
    ngx_http_lua_ffi_respond(task, 0, rsp, (int)n);
}

static void *poller(void *arg)
{
    struct slow_rt *s = arg;
    void *task;
    while ((task = ngx_http_lua_ffi_task_poll(s->tq)) != NULL) {
        int len = 0, off;
        char *req = ngx_http_lua_ffi_get_req(task, &len);
        long hold = parse_ms(req, len, "hold", -1, &off);
        if (hold >= 0) {
            sleep_ms(hold);
            respond_echo(task, off);
            continue;
        }
        long gate = parse_ms(req, len, "gate", -1, &off);
        if (gate >= 0) {
            gate_wait(gate);
            respond_echo(task, off);
            continue;
        }
        if (len >= 5 && memcmp(req, "open;", 5) == 0) {
            gate_open();
            respond_echo(task, 5);
            continue;
        }
        if (len >= 9 && memcmp(req, "scribble;", 9) == 0) {
            /* the ABI's request is the runtime's to write into */
            char *rest = malloc((size_t)len - 9 + 1);
            if (rest != NULL)
                memcpy(rest, req + 9, (size_t)len - 9);
            memset(req, 'X', (size_t)len);
            if (rest != NULL)
                ngx_http_lua_ffi_respond(task, 0, rest, len - 9);
            else
                ngx_http_lua_ffi_respond(task, 1, NULL, 0);
            continue;
        }
        long ms = parse_ms(req, len, "delay", s->default_ms, &off);
        struct due d = {now_ns() + (int64_t)ms * 1000000, 0, task, off};
        pthread_mutex_lock(&s->mu);
        d.seq = s->seq++;
        int ok = heap_push(s, d) == 0;
        /* Only a new earliest deadline changes what the responder waits for. */
        if (ok && s->heap[0].seq == d.seq)
            pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (!ok)
            respond_echo(task, off);        /* out of memory: answer now */
    }
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    release(s);
    return NULL;
}

static void *responder(void *arg)
{
    struct slow_rt *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->n == 0) {
            if (s->closing)
                break;
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        int64_t at = s->heap[0].at_ns;
        if (at > now_ns()) {
            struct timespec ts = {at / 1000000000, at % 1000000000};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            continue;
        }
        struct due d = heap_pop(s);
        pthread_mutex_unlock(&s->mu);
        respond_echo(d.task, d.off);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    release(s);
    return NULL;
}

int libffi_init(char *cfg, void *tq)
{
    struct slow_rt *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return 1;
    pthread_once(&gate_once, gate_init);
    s->tq = tq;
    s->default_ms = cfg != NULL && *cfg != '\0' ? strtol(cfg, NULL, 10) : 100;
    if (s->default_ms < 0)
        s->default_ms = 0;
    s->refs = 2;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);

    pthread_t th;
    if (pthread_create(&th, NULL, responder, s) != 0) {
        s->refs = 1;
        release(s);
        return 1;
    }
    pthread_detach(th);
    if (pthread_create(&th, NULL, poller, s) != 0) {
        /* The responder exits once it sees closing with an empty heap. */
        pthread_mutex_lock(&s->mu);
        s->closing = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        release(s);
        return 1;
    }
    pthread_detach(th);
    return 0;
}
