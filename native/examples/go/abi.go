// The lua-resty-ffi runtime ABI, seen from Go. libffi_init is C (nffi_go.c):
// it checks that Go's runtime can run in this process, finds the host's
// ngx_http_lua_ffi_* functions, then calls nffiGoStart.
package main

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "nffi_go.h"
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// task is one request as the host hands it to a poller; req points into the
// host's memory, valid until respond.
type task struct {
	ptr unsafe.Pointer
	req []byte
}

// nameThread names the calling thread (locked to its goroutine) nffi_go_poll.
func nameThread() { C.nffi_go_name_thread() }

// poll blocks until the next task, or returns false once the host finished
// the runtime (__unload) and its queue is empty.
func poll(tq unsafe.Pointer) (task, bool) {
	t := C.nffi_go_poll(tq)
	if t == nil {
		return task{}, false
	}
	var n C.int
	p := C.nffi_go_get_req(t, &n)
	var req []byte
	if p != nil && n > 0 {
		req = unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
	}
	return task{ptr: t, req: req}, true
}

// respond hands the host a malloc'd copy of rsp (the host frees it), with a
// NUL after it: a length of 0 means "strlen" in this ABI, so "" needs one.
func (t task) respond(rc int, rsp []byte) {
	buf := C.malloc(C.size_t(len(rsp) + 1))
	if buf == nil {
		C.nffi_go_respond(t.ptr, C.int(rcOutOfMemory), nil, 0)
		return
	}
	out := unsafe.Slice((*byte)(buf), len(rsp)+1)
	copy(out, rsp)
	out[len(rsp)] = 0
	C.nffi_go_respond(t.ptr, C.int(rc), (*C.char)(buf), C.int(len(rsp)))
}

//export nffiGoStart
func nffiGoStart(cfg *C.char, tq unsafe.Pointer) C.int {
	var conf string
	if cfg != nil {
		conf = C.GoString(cfg)
	}
	c, err := parseConfig(conf)
	if err != nil {
		// stderr is nginx's error log; the caller sees the rc
		fmt.Fprintf(os.Stderr, "[nffi_go_echo] bad cfg %q: %v\n", conf, err)
		return rcInitConfig
	}
	start(c, tq)
	return 0
}

// c-shared needs a main package; the host never calls main.
func main() {}
