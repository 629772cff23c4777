package app

import (
	"fmt"
	"io"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
)

// ProofConfig configures `trustchain proof`; main derives its flags from
// the tags.
type ProofConfig struct {
	Key    string `flag:"key" usage:"the client's ES256 key (PEM, mode 0600), as trustchain login --dpop --key made it"`
	Method string `flag:"method" usage:"the request's HTTP method, e.g. GET"`
	URL    string `flag:"url" usage:"the request's URL; the proof names it without the query"`
	Token  string `flag:"token" usage:"the access token the request carries, which the proof binds (ath)"`
	Nonce  string `flag:"nonce" usage:"the server's nonce, from its last DPoP-Nonce header"`
}

// Proof writes a fresh DPoP proof (RFC 9449) for one request to out. Each
// proof is good for one request, within a minute.
func Proof(pc ProofConfig, out io.Writer) error {
	var problems []Problem
	for _, req := range []struct{ flag, value string }{{"key", pc.Key}, {"method", pc.Method}, {"url", pc.URL}} {
		if req.value == "" {
			problems = append(problems, Problem{Flag: req.flag, Message: "is required"})
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	key, err := dpop.LoadKey(pc.Key)
	if err != nil {
		return err
	}
	proof, err := dpop.NewProof(key, pc.Method, pc.URL, pc.Token, pc.Nonce, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, proof)
	return err
}
