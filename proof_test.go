package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
)

// TestProofCommand: `trustchain proof` prints one proof, which the edge's
// verifier accepts for that request and key; without its flags it names
// each missing one.
func TestProofCommand(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "k.pem")
	key, err := dpop.CreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	const url, token = "https://api.example.com/products?limit=2", "a.token.here"
	var out bytes.Buffer
	if err := run(context.Background(), []string{"trustchain", "proof", "--key", keyFile, "--method", "GET", "--url", url, "--token", token}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(strings.TrimSuffix(out.String(), "\n"), "GET", "https://api.example.com/products", token, time.Now())
	if err != nil || p.JKT != jkt {
		t.Fatalf("the printed proof: %v, jkt %q want %q", err, p.JKT, jkt)
	}
	err = run(context.Background(), []string{"trustchain", "proof"}, &bytes.Buffer{}, &bytes.Buffer{})
	for _, flag := range []string{"--key", "--method", "--url"} {
		if err == nil || !strings.Contains(err.Error(), flag+": is required") {
			t.Errorf("no flags: %v does not name %s", err, flag)
		}
	}
}
