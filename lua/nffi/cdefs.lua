-- The one place libnffi's C declarations are given to LuaJIT.
-- Kept in step with native/include/nffi.h and nffi_inspect.h (test/lua-lint.test.ts compares
-- them both ways).
local ffi = require "ffi"

ffi.cdef[[
typedef struct nffi_runtime nffi_runtime;
typedef struct nffi_task nffi_task;

typedef struct nffi_stats {
    uint64_t enqueued;
    uint64_t polled;
    uint64_t responded;
    uint64_t resumed;
    uint64_t timeouts;
    uint64_t rejected;
    uint64_t late;
    int64_t depth;
    int64_t in_flight;
    int64_t live;
    uint64_t lat_count[4];
    uint64_t lat_sum_ns[4];
    uint64_t lat_max_ns[4];
    uint64_t lat_samples;
    int64_t lat_sample_every;
    uint64_t spins_in_flight;
    uint64_t spins_lost;
} nffi_stats;

typedef struct nffi_task_info {
    uint64_t id;
    const nffi_runtime *runtime;
    int64_t t_enqueued;
    int64_t t_polled;
    int64_t t_responded;
    int64_t t_resumed;
    uint64_t req_len;
    int32_t state;
    int32_t rc;
    uint32_t waiter;
    uint32_t preview_len;
    char method[32];
    char preview[64];
} nffi_task_info;

const char *nffi_version(void);
int nffi_instrumented(void);
int64_t nffi_now_ns(void);
int64_t nffi_thread_cpu_ns(void);

int nffi_pin_library(const char *path);
nffi_runtime *nffi_runtime_new(const char *name, int max_queue);
int nffi_runtime_finish(nffi_runtime *rt);
int nffi_runtime_finished(const nffi_runtime *rt);
void nffi_runtime_stats(const nffi_runtime *rt, nffi_stats *out);
double nffi_runtime_quantile(const nffi_runtime *rt, int lat_kind, double q);
int nffi_runtime_tasks(const nffi_runtime *rt, uint64_t after_id,
                       nffi_task_info *out, int max);
int nffi_tasks(uint64_t after_id, nffi_task_info *out, int max);
int64_t nffi_tasks_count(uint64_t after_id, int64_t enq_before_ns, int max_visit,
                         uint64_t *next_after);
void nffi_runtime_set_poll_spin(nffi_runtime *rt, int spin_us);
void nffi_runtime_set_lat_sample(nffi_runtime *rt, int every);
int nffi_runtime_set_instrumented(nffi_runtime *rt, int on);
void nffi_latency_all(int on);

nffi_task *nffi_task_submit(nffi_runtime *rt, const char *method, size_t method_len,
                            const char *req, size_t req_len, uint32_t waiter,
                            int *status);
nffi_task *nffi_task_submit_borrowed(nffi_runtime *rt, const char *method,
                                     size_t method_len, const char *req, size_t req_len,
                                     uint32_t waiter, int *status);
int nffi_borrow_freed(uint64_t *out, int max);
int nffi_borrow_quiesce(void);
uint64_t nffi_task_id(const nffi_task *t);
int nffi_task_state(const nffi_task *t);
int nffi_task_spin(nffi_task *t, int64_t max_ns);
int nffi_task_result(nffi_task *t, char **rsp, size_t *rsp_len);
void nffi_task_release(nffi_task *t);
int nffi_task_abandon(nffi_task *t);
int nffi_task_get_info(const nffi_task *t, nffi_task_info *out);

int nffi_wake_listen(char *path_out, int path_max);
int nffi_wake_accept(int listen_fd, const char *path);
void nffi_wake_kick(void);
int nffi_drain(nffi_task **out, int max);

typedef struct nffi_wake_stats {
    uint64_t fast_wakeups;
    uint64_t fast_posted;
    uint64_t fast_max_batch;
    uint64_t signals;
    int64_t outstanding;
    int32_t fast_on;
    int32_t fast_fd;
    uint64_t loop_hits;
} nffi_wake_stats;
int nffi_fast_install(void *post);
void nffi_fast_remove(void);
int nffi_fast_drain(void);
int nffi_task_set_sema(nffi_task *t, void *sema);
void nffi_wake_stats_get(nffi_wake_stats *out);
void nffi_fast_set_kick(void *hook);
void nffi_kick_pollers(void);
void nffi_fast_set_wait(void *hook);
int nffi_fast_poll_begin(void);
int nffi_fast_poll(int last);

int nffi_ngx_start(int fault, char *reason, int reason_max);
int nffi_ngx_active(void);
void nffi_ngx_set_poll_us(int us);
void nffi_ngx_exit_check(void);

unsigned nffi_euid(void);
int nffi_path_check(const char *path, unsigned uid, uint64_t *sig);

int nffi_request_available(void);
const void *nffi_co_exdata(const void *co);
int nffi_co_request(const void *co, const char **method, size_t *method_len,
                    const char **uri, size_t *uri_len);

int nffi_hook_available(void);
int nffi_hook_install(void *L, int gate);
int nffi_hook_calibrate(const void *fn, const void *proto);
int nffi_hook_target(const void *obj, int is_proto);
void nffi_hook_targets_clear(void);
int nffi_hook_learn_resumers(void *co);
int nffi_hook_inside(void);
void nffi_hook_resync_begin(void);
void nffi_hook_resync_set(const void *co, int depth);
int nffi_hook_resync_end(void *L, int full);
void nffi_hook_force_lines(void *L);
int nffi_hook_remove(void *L);
int nffi_hook_installed(void *L);
int nffi_hook_set_line(int line, int on);
void nffi_hook_clear_lines(void);
int nffi_hook_fast(void);
int nffi_hook_mask(void *L);
int nffi_hook_watch_begin(void *helper);
int nffi_hook_watch_step(void *helper, int budget_us);
int nffi_hook_watch_tick(void *L);
int nffi_hook_watching(void);
int nffi_hook_forced(void);
const char *nffi_hook_watch_reason(void);
uint64_t nffi_watch_traps(void);
uint64_t nffi_watch_late_traps(void);
int nffi_watch_error(void);
int nffi_hook_watch_check_begin(void *L, const void *fn, int line);
int nffi_hook_watch_check_end(void *L);
int nffi_hook_watch_ok(void);
void nffi_watch_fault(int on);
int nffi_watch_probe(void);
int nffi_watch_emulate_trap(void);
int nffi_hook_mute(int line, double until);
int nffi_hook_mute_fn(int line, const void *obj, int is_proto);
uint64_t nffi_hook_mute_take(int line);
void nffi_hook_unmute(int line);
typedef struct nffi_hook_stats {
    uint64_t calls;
    uint64_t matches;
    uint64_t errors;
    uint64_t resumes;
    uint64_t repeats;
    uint64_t muted;
    uint64_t watch_entries;
    uint64_t watch_traps;
    uint64_t watch_late;
    uint64_t watch_checks;
    int64_t watch_check_us;
    int64_t heap_objects;
    int64_t heap_walk_us;
    int64_t heap_slices;
    int64_t heap_slice_max_us;
    const char *watch_reason;
    int32_t mask;
    int32_t inside;
    int32_t fast;
    int32_t watching;
    int32_t watch_ok;
} nffi_hook_stats;
int nffi_hook_get_stats(void *L, nffi_hook_stats *out);

int libffi_init(char *cfg, void *tq);
int lib_nonblocking_ffi_init(char *cfg, void *tq);
]]

return {
    OK = 0,
    EFULL = -1,
    EFINISHED = -2,
    ENOMEM = -3,
    EINVAL = -4,

    TASK_PENDING = 0,
    TASK_POLLED = 1,
    TASK_DONE = 2,
    TASK_READY = 3,
    TASK_ABANDONED = 4,

    LAT_QUEUE = 0,
    LAT_SERVICE = 1,
    LAT_WAKEUP = 2,
    LAT_TOTAL = 3,

    PATH_FILE = 0,
    PATH_DIR = 1,
    PATH_MISSING = -1,
    PATH_SYMLINK = -2,
    PATH_TYPE = -3,
    PATH_OWNER = -4,
    PATH_MODE = -5,

    REQ_NONE = 1,
}
