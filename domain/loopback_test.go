package domain_test

import (
	"testing"

	"github.com/trustchain/trustchain/domain"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":        true,
		"127.0.0.1":        true,
		"127.8.9.10":       true,
		"::1":              true,
		"":                 false,
		"[::1]":            false, // a host, not a host:port or a bracketed literal
		"localhost.":       false,
		"localhost.evil":   false,
		"127.0.0.1.nip.io": false,
		"10.0.0.1":         false,
		"0.0.0.0":          false,
		"example.com":      false,
	} {
		if got := domain.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
