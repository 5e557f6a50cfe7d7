"""Example Python runtime for nffi: echo, slow, fail and raise.

Load it (Lua): require("nffi").load("nffi_python", "nffi_echo_py,init,pollers=2")
Each request is "<method>\\n<body>":
    echo\\n<bytes>         -> rc 0, the bytes as they came (NULs too)
    slow\\n<ms>;<bytes>    -> sleeps <ms> in its poller, then rc 0, the bytes
    fail\\n<bytes>         -> rc 1, "error: <bytes>" (what the C fail runtime says)
    raise\\n<text>         -> the handler raises RuntimeError(text): rc 1,
                             "RuntimeError: <text>"
    anything else         -> rc 1, "unknown method '...' (known: ...)"
cfg: "pollers=N" (threads polling the queue, default 2) and "label=NAME"
(their thread name, 15 bytes at most: what ps -L and /proc/PID/task show).
"""
import time

import nffi_py

MAX_SLEEP_MS = 600000


def echo(body):
    return body


def slow(body):
    ms, _, rest = body.partition(b";")
    ms = int(ms)
    if not 0 <= ms <= MAX_SLEEP_MS:
        raise ValueError("slow: ms must be 0..%d, got %d" % (MAX_SLEEP_MS, ms))
    time.sleep(ms / 1000.0)   # releases the GIL; this poller waits meanwhile
    return rest


def fail(body):
    return 1, b"error: " + body


def raise_(body):
    raise RuntimeError(body.decode("utf-8", "replace"))


HANDLER = nffi_py.methods({"echo": echo, "slow": slow, "fail": fail, "raise": raise_})


def init(cfg, tq):
    opts = nffi_py.parse_cfg(nffi_py.cfg_text(cfg), {"pollers": "2", "label": "nffi-py"})
    nffi_py.serve(tq, HANDLER, pollers=int(opts["pollers"]), name=opts["label"])
    return 0
