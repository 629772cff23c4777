//go:build unix

package server

import (
	"net"
	"syscall"
)

// pending reports whether c's peer has sent bytes not yet read, by peeking
// at the socket without blocking.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	n := 0
	// Control, not Read: Read would wait for the read lock that the
	// connection's own goroutine holds while it waits for the request.
	_ = raw.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
