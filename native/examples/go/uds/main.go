// nffi_go_uds: the "unix-socket way" of calling Go from nginx that
// lua-resty-ffi's README measures itself against, here as the bench's other
// side: a Go echo server on a unix socket, one goroutine per connection, each
// message a 4-byte big-endian length and that many bytes, answered the same way.
//
//	nffi_go_uds PATH    (serves until killed; replaces PATH)
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// as big as a message may be: a length past it is a broken client
const maxMessage = 64 << 20

func serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriterSize(conn, 64<<10)
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxMessage {
			fmt.Fprintf(os.Stderr, "nffi_go_uds: message of %d bytes refused (max %d)\n", n, maxMessage)
			return
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		w.Write(hdr[:])
		w.Write(buf)
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: nffi_go_uds PATH")
		os.Exit(2)
	}
	path := os.Args[1]
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "nffi_go_uds: %v\n", err)
		os.Exit(1)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nffi_go_uds: %v\n", err)
		os.Exit(1)
	}
	// nginx workers run as another user (nobody) and must connect
	if err := os.Chmod(path, 0o666); err != nil {
		fmt.Fprintf(os.Stderr, "nffi_go_uds: %v\n", err)
		os.Exit(1)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "nffi_go_uds: %v\n", err)
			os.Exit(1)
		}
		go serve(conn)
	}
}
