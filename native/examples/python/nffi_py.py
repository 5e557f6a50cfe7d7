"""nffi_py: answer nffi / lua-resty-ffi tasks from Python threads.

libnffi_python (loader.c) imports your module and calls its entry function
with (cfg, tq); the entry starts pollers with serve() and returns 0:

    import nffi_py

    def init(cfg, tq):
        opts = nffi_py.parse_cfg(nffi_py.cfg_text(cfg), {"pollers": "2"})
        nffi_py.serve(tq, nffi_py.methods({"echo": lambda body: body}),
                      pollers=int(opts["pollers"]))
        return 0

Each poller is a threading.Thread that blocks in ngx_http_lua_ffi_task_poll.
cffi releases the GIL around every C call, so a blocked poller holds nothing;
the GIL is taken to run the handler only. A handler runs in its poller's
thread: while it runs (or sleeps), that poller takes no other task.

The binding only hands the runtime the request bytes (rt:anyname(req), as in
lua-resty-ffi, drops the method name), so methods() reads the method from the
request: "<method>\\n<body>".
"""
import threading

from cffi import FFI

__all__ = ["ERROR_RC", "cfg_text", "parse_cfg", "split_method", "methods", "serve"]

# The rc of a task whose handler raised, or whose method is unknown.
ERROR_RC = 1
_INT_MAX = 2**31 - 1

_ffi = FFI()
# The lua-resty-ffi ABI (libnffi exports it, loaded RTLD_GLOBAL by the
# binding), malloc for responses (the binding frees them), thread names.
_ffi.cdef("""
void *ngx_http_lua_ffi_task_poll(void *tq);
char *ngx_http_lua_ffi_get_req(void *task, int *len);
void ngx_http_lua_ffi_respond(void *task, int rc, char *rsp, int rsp_len);
void *malloc(size_t size);
unsigned long pthread_self(void);
int pthread_setname_np(unsigned long thread, const char *name);
""")
_C = _ffi.dlopen(None)
try:
    _poll, _get_req, _respond = (_C.ngx_http_lua_ffi_task_poll, _C.ngx_http_lua_ffi_get_req,
                                 _C.ngx_http_lua_ffi_respond)
except AttributeError as e:
    raise ImportError("nffi_py runs inside nginx with the nffi binding (libnffi loaded "
                      "RTLD_GLOBAL): %s" % e) from None


def cfg_text(cfg):
    """The cfg the entry function got (an address, 0 for none) as a str."""
    if not cfg:
        return ""
    return _ffi.string(_ffi.cast("char *", cfg)).decode("utf-8", "replace")


def parse_cfg(text, defaults):
    """"key=value;key=value" -> dict over defaults; unknown keys are an error."""
    opts = dict(defaults)
    for item in filter(None, (s.strip() for s in text.split(";"))):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            raise ValueError("cfg item %r: expected one of %s as key=value"
                             % (item, ", ".join(sorted(defaults))))
        opts[key] = value
    return opts


def split_method(req):
    """b"<method>\\n<body>" -> ("method", b"body"); no newline: all of it names the method."""
    name, _, body = req.partition(b"\n")
    return name.decode("utf-8", "replace"), body


def methods(table):
    """A handler for serve() that dispatches on the request's method line."""
    known = ", ".join(sorted(table))

    def handle(req):
        name, body = split_method(req)
        fn = table.get(name)
        if fn is None:
            return ERROR_RC, "unknown method '%s' (known: %s)" % (name, known)
        return fn(body)
    return handle


def _describe(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def _as_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _result(handler, req):
    """(rc, bytes) for one request; never raises."""
    try:
        out = handler(req)
        rc = 0
        if isinstance(out, tuple):
            rc, out = out
        if not isinstance(rc, int) or not -_INT_MAX - 1 <= rc <= _INT_MAX:
            raise TypeError("handler returned rc %r, not a C int" % (rc,))
        return rc, _as_bytes(out)
    except BaseException as e:   # every task gets its one response
        return ERROR_RC, _describe(e).encode("utf-8", "replace")


def _buffer(rc, data):
    """(rc, malloc'd copy of data, its length) for respond, which frees it."""
    n = len(data)
    if n > _INT_MAX:
        rc, data = ERROR_RC, b"response of %d bytes: the ABI's rsp_len is a C int" % n
        n = len(data)
    # NUL-terminated: the ABI reads an empty response's length with strlen
    buf = _C.malloc(n + 1)
    if buf == _ffi.NULL:
        return (rc or ERROR_RC), _ffi.NULL, 0
    buf = _ffi.cast("char *", buf)
    _ffi.memmove(buf, data, n)
    buf[n] = b"\0"
    return rc, buf, n


def _loop(tq, handler, name):
    try:
        _C.pthread_setname_np(_C.pthread_self(), name.encode("utf-8")[:15])
    except Exception:
        pass   # a name is for ps and /proc only
    n = _ffi.new("int *")
    while True:
        task = _poll(tq)          # the GIL is released while this blocks
        if task == _ffi.NULL:     # rt:__unload(): the queue is finished
            return
        try:
            rc, buf, size = _buffer(*_result(handler, _ffi.unpack(_get_req(task, n), n[0])))
        except BaseException:     # out of memory copying: still one response
            rc, buf, size = ERROR_RC, _ffi.NULL, 0
        _respond(task, rc, buf, size)   # exactly once: nothing after it can raise


def serve(tq, handler, pollers=1, name="nffi-py"):
    """Start `pollers` threads answering the tasks of queue tq with handler.

    handler(req: bytes) returns the response (bytes, str or None: rc 0) or a
    tuple (rc, response); an exception answers ERROR_RC and "Type: message".
    The threads end when the runtime is unloaded. Returns them.
    """
    if not isinstance(pollers, int) or not 1 <= pollers <= 256:
        raise ValueError("pollers must be 1..256, got %r" % (pollers,))
    queue = _ffi.cast("void *", tq)
    threads = []
    for i in range(pollers):
        t = threading.Thread(target=_loop, args=(queue, handler, name),
                             name="%s-%d" % (name, i), daemon=True)
        t.start()
        threads.append(t)
    return threads
