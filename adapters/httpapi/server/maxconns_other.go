//go:build !unix

package server

// DefaultMaxConns has no open-file limit to read here.
func DefaultMaxConns() int { return maxDefaultConns }
