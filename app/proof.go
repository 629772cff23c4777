package app

import (
	"io"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/adapters/flagcheck"
)

// ProofConfig configures `trustchain proof`; main derives its flags from
// the tags.
type ProofConfig struct {
	Key    string `flag:"key" usage:"the client's ES256 key (PEM, mode 0600), as trustchain login --dpop --key made it" validate:"required"`
	Method string `flag:"method" usage:"the request's HTTP method, e.g. GET" validate:"required"`
	URL    string `flag:"url" usage:"the request's URL; the proof names it without the query" validate:"required,http_url"`
	Token  string `flag:"token" usage:"the access token the request carries, which the proof binds (ath)"`
	Nonce  string `flag:"nonce" usage:"the server's nonce, from its last DPoP-Nonce header"`
}

// Proof writes a fresh DPoP proof (RFC 9449) for one request to out. Each
// proof is good for one request, within a minute.
func Proof(pc ProofConfig, out io.Writer) error {
	problems, err := flagcheck.Check[Problem](configValidator, pc)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return dpop.WriteProof(out, pc.Key, pc.Method, pc.URL, pc.Token, pc.Nonce, time.Now())
}
