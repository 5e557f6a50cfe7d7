/*
 * libnffi_python: a runtime library that runs Python code. It embeds CPython
 * and hands each runtime to a Python entry function, which starts threads that
 * poll the task queue through cffi (nffi_py.py does that part).
 *
 * cfg, as lua-resty-ffi's Python loader reads it, so its libraries and load
 * lines work unchanged:
 *     "[dir/]module[?],entry[,rest]"
 *   dir/   put in front of sys.path (the directory next to this library,
 *          <dir of libnffi_python.so>/python, is always on it);
 *   ?      re-import the module if this process imported it before (a
 *          reload after rt:__unload() picks up edits);
 *   entry  called as entry(cfg, tq): cfg is the address of a NUL-terminated
 *          copy of rest (0 without one), tq the task queue's address; it
 *          returns 0 (or None) once its pollers run, else a non-zero rc.
 * Failures are one "[nffi python] ..." line on stderr, which nginx sends to
 * its error log, and a non-zero rc.
 *
 * CPython starts once per process, on the first load in that process: the
 * nffi binding calls libffi_init in the worker only (the nginx master merely
 * dlopens this library when init_by_lua loads a runtime). A process that
 * forked after starting CPython refuses: its interpreter's threads did not
 * survive the fork.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NFFI_PY_EXPORT __attribute__((visibility("default")))

/* nffi_py_lock serialises starts and loads; nffi_py_pid is the process
 * CPython was started in (0: not started), written under the lock. */
static pthread_mutex_t nffi_py_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t nffi_py_pid;

static void nffi_py_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void nffi_py_say(const char *fmt, ...)
{
    static const char prefix[] = "[nffi python] ";
    char line[1024];
    memcpy(line, prefix, sizeof(prefix) - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + sizeof(prefix) - 1, sizeof(line) - sizeof(prefix), fmt, ap);
    va_end(ap);
    size_t len = sizeof(prefix) - 1 + (n < 0 ? 0 : (size_t)n);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* one write(2): the lines of several workers sharing the log do not interleave */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* The pending Python exception as one line "Type: message (at file:line)",
 * then cleared. Needs the GIL. */
static void nffi_py_say_error(const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *tname = type != NULL ? ((PyTypeObject *)type)->tp_name : "error";
    PyObject *str = value != NULL ? PyObject_Str(value) : NULL;
    const char *msg = str != NULL ? PyUnicode_AsUTF8(str) : NULL;
    if (msg == NULL) {
        PyErr_Clear();
        msg = "";
    }

    /* where: the innermost frame, so a bug in an entry function is found */
    char at[PATH_MAX + 32] = "";
    PyTracebackObject *last = (PyTracebackObject *)tb;
    while (last != NULL && last->tb_next != NULL)
        last = last->tb_next;
    if (last != NULL) {
        PyCodeObject *code = PyFrame_GetCode(last->tb_frame);
        const char *file = code != NULL ? PyUnicode_AsUTF8(code->co_filename) : NULL;
        if (file != NULL)
            snprintf(at, sizeof(at), " (at %s:%d)", file, last->tb_lineno);
        Py_XDECREF(code);
        PyErr_Clear();
    }
    nffi_py_say("%s: %s: %s%s", what, tname, msg, at);
    Py_XDECREF(str);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Inserts dir into sys.path at pos unless it is there already. GIL held. */
static int nffi_py_add_path(const char *dir, int pos)
{
    PyObject *path = PySys_GetObject("path");   /* borrowed */
    PyObject *item = PyUnicode_DecodeFSDefault(dir);
    if (path == NULL || item == NULL) {
        Py_XDECREF(item);
        return -1;
    }
    int has = PySequence_Contains(path, item);
    int rc = has < 0 ? -1 : has ? 0 : PyList_Insert(path, pos, item);
    Py_DECREF(item);
    return rc;
}

/* <dir of this library>/python: the default home of Python runtimes. */
static int nffi_py_default_dir(char *out, size_t max)
{
    Dl_info info;
    if (dladdr((void *)&nffi_py_default_dir, &info) == 0 || info.dli_fname == NULL)
        return -1;
    const char *slash = strrchr(info.dli_fname, '/');
    int n = slash == NULL ? snprintf(out, max, "python")
                          : snprintf(out, max, "%.*s/python", (int)(slash - info.dli_fname),
                                     info.dli_fname);
    return n > 0 && (size_t)n < max ? 0 : -1;
}

/* Starts CPython in this process. Lock held. 0 or -1 (said why). */
static int nffi_py_start(void)
{
    pid_t pid = getpid();
    if (nffi_py_pid == pid)
        return 0;
    if (nffi_py_pid != 0) {
        nffi_py_say("CPython was started in process %d, which forked this one (%d); "
                    "load the runtime in the worker only", (int)nffi_py_pid, (int)pid);
        return -1;
    }

    /* Extension modules (cffi's _cffi_backend) take the Py* symbols from the
     * global scope; libpython came in as our dependency, with our RTLD_LOCAL. */
    Dl_info info;
    if (dladdr((void *)&Py_InitializeFromConfig, &info) == 0 || info.dli_fname == NULL ||
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL) == NULL) {
        nffi_py_say("cannot make libpython's symbols global: %s", dlerror());
        return -1;
    }

    /* nginx owns the locale, the signals and stdio of its workers: CPython
     * leaves them alone, and reads UTF-8 file names whatever LC_CTYPE is. */
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.configure_locale = 0;
    pre.utf8_mode = 1;
    PyStatus st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st)) {
        nffi_py_say("cannot start CPython: %s", st.err_msg ? st.err_msg : "pre-init failed");
        return -1;
    }
    PyConfig cfg;
    PyConfig_InitPythonConfig(&cfg);
    cfg.install_signal_handlers = 0;
    cfg.configure_c_stdio = 0;
    cfg.parse_argv = 0;
    cfg.user_site_directory = 0;
    /* never a __pycache__ beside the sources (the build tree, or read-only) */
    cfg.write_bytecode = 0;
    st = Py_InitializeFromConfig(&cfg);
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(st)) {
        nffi_py_say("cannot start CPython: %s", st.err_msg ? st.err_msg : "init failed");
        return -1;
    }

    char dir[PATH_MAX];
    if (nffi_py_default_dir(dir, sizeof(dir)) != 0 || nffi_py_add_path(dir, 0) != 0) {
        if (PyErr_Occurred())
            nffi_py_say_error("cannot add the module dir to sys.path");
        else
            nffi_py_say("cannot find the directory of libnffi_python");
    }
    nffi_py_pid = pid;
    /* The worker's thread gives the GIL back: pollers run while nginx serves,
     * and take it only to run Python code. */
    PyEval_SaveThread();
    return 0;
}

/* Imports module (re-imports it when reload is set). New reference or NULL. */
static PyObject *nffi_py_import(const char *module, int reload)
{
    PyObject *name = PyUnicode_DecodeFSDefault(module);
    if (name == NULL)
        return NULL;
    PyObject *mod = PyImport_GetModule(name);
    if (mod == NULL && !PyErr_Occurred()) {
        mod = PyImport_Import(name);
    } else if (mod != NULL && reload) {
        PyObject *fresh = PyImport_ReloadModule(mod);
        Py_DECREF(mod);
        mod = fresh;
    }
    Py_DECREF(name);
    return mod;
}

/* Imports the module, calls entry(cfg_addr, tq). GIL held. Returns the rc. */
static int nffi_py_run_entry(const char *dir, const char *module, int reload,
                             const char *entry, const char *rest, void *tq)
{
    if (dir != NULL && nffi_py_add_path(dir, 0) != 0) {
        nffi_py_say_error("cannot add the cfg's dir to sys.path");
        return 1;
    }
    PyObject *mod = nffi_py_import(module, reload);
    if (mod == NULL) {
        char what[PATH_MAX + 300];
        snprintf(what, sizeof(what), "cannot import '%s'%s%s", module, dir != NULL ? " from " : "",
                 dir != NULL ? dir : "");
        nffi_py_say_error(what);
        return 1;
    }
    PyObject *fn = PyObject_GetAttrString(mod, entry);
    Py_DECREF(mod);
    if (fn == NULL || !PyCallable_Check(fn)) {
        PyErr_Clear();
        nffi_py_say("module '%s' has no function '%s'", module, entry);
        Py_XDECREF(fn);
        return 1;
    }
    PyObject *ret = PyObject_CallFunction(fn, "NN", PyLong_FromVoidPtr((void *)rest),
                                          PyLong_FromVoidPtr(tq));
    Py_DECREF(fn);
    if (ret == NULL) {
        char what[300];
        snprintf(what, sizeof(what), "%s.%s raised", module, entry);
        nffi_py_say_error(what);
        return 1;
    }
    int rc = 0;
    if (ret != Py_None) {
        long v = PyLong_Check(ret) ? PyLong_AsLong(ret) : -1;
        if (!PyLong_Check(ret) || PyErr_Occurred() || v < INT_MIN || v > INT_MAX) {
            PyErr_Clear();
            nffi_py_say("%s.%s returned %s, not 0, None or an int rc", module, entry,
                        Py_TYPE(ret)->tp_name);
            rc = 1;
        } else {
            rc = (int)v;
        }
    }
    Py_DECREF(ret);
    return rc;
}

NFFI_PY_EXPORT int libffi_init(char *cfg, void *tq)
{
    if (cfg == NULL || *cfg == '\0') {
        nffi_py_say("cfg must be \"[dir/]module[?],entry[,cfg]\", got none");
        return 1;
    }
    /* Kept for the life of the process: the entry gets rest's address and a
     * library may keep it (the binding's own cfg buffer is garbage later). */
    char *copy = strdup(cfg);
    if (copy == NULL)
        return 1;
    char *rest = copy;
    char *module = strsep(&rest, ",");
    char *entry = strsep(&rest, ",");
    char *dir = NULL;
    char *slash = strrchr(module, '/');
    if (slash != NULL) {
        *slash = '\0';
        dir = *module != '\0' ? module : "/";
        module = slash + 1;
    }
    int reload = 0;
    size_t n = strlen(module);
    if (n > 0 && module[n - 1] == '?') {
        module[--n] = '\0';
        reload = 1;
    }
    if (n == 0 || entry == NULL || *entry == '\0') {
        nffi_py_say("cfg must be \"[dir/]module[?],entry[,cfg]\", got \"%s\"", cfg);
        free(copy);
        return 1;
    }

    pthread_mutex_lock(&nffi_py_lock);
    int rc = 1;
    if (nffi_py_start() == 0) {
        PyGILState_STATE g = PyGILState_Ensure();
        rc = nffi_py_run_entry(dir, module, reload, entry, rest, tq);
        PyGILState_Release(g);
    }
    pthread_mutex_unlock(&nffi_py_lock);
    return rc;
}
