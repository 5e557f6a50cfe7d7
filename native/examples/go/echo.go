// The example runtime itself: its cfg, its pollers and its methods.
//
// The ABI hands a runtime the request bytes only (lua-resty-ffi's rt:NAME(req)
// does not pass NAME on), so the method is the request's first word:
//
//	"echo <bytes>"          answers <bytes>, exactly (NULs and all)
//	"slow <ms> [<bytes>]"   answers <bytes> after <ms> milliseconds
//	"fail <bytes>"          answers rc fail_rc (cfg, default 1), "error: <bytes>"
//	"panic <bytes>"         panics; serve's recover answers rc 4, "panic: <bytes>"
//	anything else           rc 2 and a message naming the known methods
package main

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Return codes. 0 is success; fail's rc comes from the cfg.
const (
	rcBadRequest  = 2 // unknown method, malformed arguments
	rcOutOfMemory = 3
	rcPanic       = 4 // a method panicked
	// libffi_init's for a bad cfg (nffi_go.h has the others)
	rcInitConfig = 1
)

const maxSlowMs = 3600 * 1000

type config struct {
	pollers int // goroutines polling the queue, each on its own OS thread
	failRc  int
}

// parseConfig reads "pollers=N fail_rc=N" (spaces or commas between; both
// optional).
func parseConfig(s string) (config, error) {
	c := config{pollers: 2, failRc: 1}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	for _, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return c, fmt.Errorf("%q is not key=value (keys: pollers, fail_rc)", f)
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return c, fmt.Errorf("%s=%q is not an integer", key, val)
		}
		switch key {
		case "pollers":
			if n < 1 || n > 256 {
				return c, fmt.Errorf("pollers=%d is out of range 1..256", n)
			}
			c.pollers = n
		case "fail_rc":
			if n == 0 {
				return c, fmt.Errorf("fail_rc=0 would be success")
			}
			c.failRc = n
		default:
			return c, fmt.Errorf("unknown key %q (keys: pollers, fail_rc)", key)
		}
	}
	return c, nil
}

func start(c config, tq unsafe.Pointer) {
	for i := 0; i < c.pollers; i++ {
		go pollLoop(c, tq)
	}
}

// pollLoop serves tasks until the host finishes the runtime. Its goroutine
// is locked to its thread and never unlocks: when it returns, Go ends that
// thread. Unlocked, the thread would stay parked in Go's pool for good (Go
// never ends idle threads), so an unloaded runtime would keep its threads.
// A poller blocks in the host's poll most of the time anyway, holding a
// thread either way. The thread is named nffi_go_poll, for ps -L and top -H.
func pollLoop(c config, tq unsafe.Pointer) {
	runtime.LockOSThread()
	nameThread()
	for {
		t, ok := poll(tq)
		if !ok {
			return
		}
		serve(c, t)
	}
}

// serve answers one task. A panic that reached the poller's goroutine would
// end the whole nginx worker (Go's runtime exits the process), so it is
// answered instead, as an error of this call.
func serve(c config, t task) {
	defer func() {
		if r := recover(); r != nil {
			t.respond(rcPanic, []byte(fmt.Sprintf("panic: %v", r)))
		}
	}()
	method, body := t.req, []byte(nil)
	if i := bytes.IndexByte(t.req, ' '); i >= 0 {
		method, body = t.req[:i], t.req[i+1:]
	}
	switch string(method) {
	case "echo":
		t.respond(0, body)
	case "fail":
		t.respond(c.failRc, append([]byte("error: "), body...))
	case "slow":
		slow(t, body)
	case "panic":
		panic(string(body))
	default:
		t.respond(rcBadRequest, []byte(fmt.Sprintf("unknown method %q (have: echo, slow, fail, panic)",
			truncate(method, 32))))
	}
}

// slow answers from a timer, not the poller: the poller goes back to the
// queue at once, so many slow calls wait together on a few threads.
func slow(t task, args []byte) {
	ms, rest := args, []byte(nil)
	if i := bytes.IndexByte(args, ' '); i >= 0 {
		ms, rest = args[:i], args[i+1:]
	}
	n, err := strconv.Atoi(string(ms))
	if err != nil || n < 0 || n > maxSlowMs {
		t.respond(rcBadRequest, []byte(fmt.Sprintf("slow wants 'slow <ms> [body]' with ms in 0..%d, got %q",
			maxSlowMs, truncate(args, 32))))
		return
	}
	// the request's bytes belong to the host until respond: copy what is kept
	keep := append([]byte(nil), rest...)
	time.AfterFunc(time.Duration(n)*time.Millisecond, func() { t.respond(0, keep) })
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
