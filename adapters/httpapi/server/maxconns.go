package server

const (
	// reservedFiles are kept out of the API port's share of the open-file
	// limit.
	reservedFiles = 256
	// minDefaultConns and maxDefaultConns bound the derived cap: a tiny
	// limit still serves, and a huge one does not let a flood of idle
	// sockets take gigabytes of buffers.
	minDefaultConns = 32
	maxDefaultConns = 1 << 16
)

func clampConns(nofile int64) int {
	return int(min(max(nofile-reservedFiles, minDefaultConns), maxDefaultConns))
}
