//go:build !unix

package app_test

import "time"

// processCPU is unknown here; the benchmark then leaves CPU out.
func processCPU() time.Duration { return 0 }
