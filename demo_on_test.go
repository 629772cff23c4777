//go:build !nodemo

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Command lines of demo and certs, which only the default build has, for
// the command-line tests.
var (
	devHelp    = [][]string{{"demo", "--help"}, {"certs", "--help"}}
	devBadFlag = []string{"demo", "--bogus"}
)

// TestDemoSaysTheDSNCameFromTheEnvironment: a MYSQL_DSN left in the shell
// moves the demo onto MySQL; when that fails, the error names the variable.
func TestDemoSaysTheDSNCameFromTheEnvironment(t *testing.T) {
	t.Setenv("MYSQL_DSN", "nobody:pw@tcp(127.0.0.1:1)/shop")
	args := []string{"trustchain", "demo", "--listen", "127.0.0.1:0", "--ui-listen", "127.0.0.1:0", "--log-level", "error"}
	err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "from MYSQL_DSN (from the environment) for B") {
		t.Fatalf("err = %v, want it to name MYSQL_DSN as the source", err)
	}
	err = run(context.Background(), append(args, "--mysql-dsn", "nobody:pw@tcp(127.0.0.1:1)/shop"), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "from --mysql-dsn for B:") {
		t.Fatalf("err = %v, want it to name --mysql-dsn as the source", err)
	}
}
