//go:build nodemo

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// The production build has no demo or certs command lines to test.
var (
	devHelp    [][]string
	devBadFlag []string
)

// TestNoDemoIsOneLine: in the production build, demo and certs, with any
// arguments, fail with one line saying the build has no demo.
func TestNoDemoIsOneLine(t *testing.T) {
	for _, args := range [][]string{{"demo"}, {"demo", "--help"}, {"certs", "--out", "x"}, {"demo", "--bogus"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"trustchain"}, args...), &stdout, &stderr)
		if !errors.Is(err, errNoDemo) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want the one line %q", args, err, errNoDemo)
		}
		if stdout.Len()+stderr.Len() > 0 {
			t.Errorf("%v printed %q%q besides the error", args, stdout.String(), stderr.String())
		}
	}
}
