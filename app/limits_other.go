//go:build !unix

package app

// defaultMaxConns has no open-file limit to read here.
func defaultMaxConns() int { return maxDefaultConns }
