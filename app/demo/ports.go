package demo

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/app"
)

// addrFlags are the demo's listeners, in the order they are claimed.
var addrFlags = []string{"listen", "ui-listen", "issuer-listen", "c-listen", "b-listen", "a-admin-listen", "c-admin-listen", "b-admin-listen"}

// movable are the listeners a person types (A's and the page's): left at
// their default, a taken port moves to the next free one instead of
// stopping the first run on a busy machine.
var movable = map[string]bool{"listen": true, "ui-listen": true}

// maxPortMoves bounds the search for a free port after a taken default.
const maxPortMoves = 20

// claimAddrs checks every listener before anything binds, and fixes the
// issuer's address to the one kept in state when no flag chose it. A taken
// address fails with the flag that chose it, except a movable default; the
// moves are returned, to be printed.
func (dc *Config) claimAddrs(state *issuer.State) (moves []string, err error) {
	var problems []app.Problem
	for _, flag := range addrFlags {
		p, given := dc.addr(flag), dc.From[flag] != ""
		kept := ""
		if flag == "issuer-listen" && state != nil && !given {
			if kept = state.Get(flag); kept != "" {
				*p = kept
			}
		}
		got, err := freeAddr(*p, movable[flag] && !given)
		switch {
		case err != nil && kept != "":
			problems = append(problems, app.Problem{Flag: flag, Message: fmt.Sprintf("%v (the address kept in --state-dir %s, so that tokens from before still verify)", err, dc.StateDir)})
		case err != nil:
			problems = append(problems, app.Problem{Flag: flag, Message: err.Error()})
		case got != *p:
			moves = append(moves, fmt.Sprintf("%s is in use, so --%s took %s", *p, flag, got))
			*p = got
		}
	}
	if len(problems) > 0 {
		return nil, &app.ConfigError{Problems: problems}
	}
	return moves, nil
}

// freeAddr returns addr when nothing listens there (or its port is 0,
// any free port), else, when move is set, the first free port after it.
// The probe closes at once: the demo binds a moment later, on loopback.
func freeAddr(addr string, move bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q has no port number", addr)
	}
	if n == 0 {
		return addr, nil
	}
	for try := n; try <= min(n+maxPortMoves, 65535); try++ {
		candidate := net.JoinHostPort(host, strconv.Itoa(try))
		ln, err := net.Listen("tcp", candidate)
		if err == nil {
			_ = ln.Close()
			return candidate, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return "", err
		}
		if !move {
			return "", fmt.Errorf("%s is in use: choose another address, or port 0 for any free one", addr)
		}
	}
	return "", fmt.Errorf("%s and the %d ports after it are in use: choose another address, or port 0 for any free one", addr, maxPortMoves)
}

// invocation is how the printed commands start this binary: its own path,
// or `go run .` when `go run` built it into the build cache.
func invocation() string {
	exe, err := os.Executable()
	if err != nil || inBuildCache(exe) {
		return "go run ."
	}
	if strings.ContainsAny(exe, " '\"$`\\") {
		return "'" + strings.ReplaceAll(exe, "'", `'\''`) + "'"
	}
	return exe
}

// inBuildCache reports whether exe lies in a go-build temporary directory,
// where `go run` and `go test` put what they build.
func inBuildCache(exe string) bool {
	for dir := filepath.Dir(exe); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if strings.HasPrefix(filepath.Base(dir), "go-build") {
			return true
		}
	}
	return false
}
