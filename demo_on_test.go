//go:build !nodemo

package main

// Command lines of demo and certs, which only the default build has, for
// the command-line tests.
var (
	devHelp    = [][]string{{"demo", "--help"}, {"certs", "--help"}}
	devBadFlag = []string{"demo", "--bogus"}
)
