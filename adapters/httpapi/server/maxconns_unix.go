//go:build unix

package server

import "syscall"

// DefaultMaxConns leaves room under the open-file limit for everything that
// is not an API connection: the admin port, the pool to the next hop or the
// database, the issuer, log and certificate files. Go raises the soft limit
// to the hard one at startup, so this is the hard limit in practice.
func DefaultMaxConns() int {
	var lim syscall.Rlimit
	// An unlimited (or absurdly high) limit takes the ceiling.
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<31 {
		return maxDefaultConns
	}
	return clampConns(int64(lim.Cur))
}
