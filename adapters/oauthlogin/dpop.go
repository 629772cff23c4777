package oauthlogin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Prover holds the DPoP key (RFC 9449) the token is to be bound to.
type Prover interface {
	// Algorithm is the JWS algorithm of the proofs, e.g. ES256.
	Algorithm() string
	// TokenTransport sends a fresh proof with every POST to tokenURL
	// through base, following the server's nonces.
	TokenTransport(base http.RoundTripper, tokenURL string) http.RoundTripper
}

var (
	// ErrNoDPoP: the issuer's discovery does not offer DPoP with the
	// key's algorithm (dpop_signing_alg_values_supported, RFC 9449 §5.1).
	ErrNoDPoP = errors.New("the issuer does not offer DPoP")
	// ErrNotBound: a proof was sent but the token came back unbound
	// (token_type is not DPoP): the issuer ignored it.
	ErrNotBound = errors.New("the issuer did not bind the token to the DPoP key")
)

// checkDPoP refuses, before anyone logs in, an issuer that does not say
// it takes proofs signed with the prover's algorithm.
func checkDPoP(provider *oidc.Provider, p Prover) error {
	var doc struct {
		Algorithms []string `json:"dpop_signing_alg_values_supported"`
	}
	if err := provider.Claims(&doc); err != nil {
		return fmt.Errorf("read discovery: %w", err)
	}
	if !slices.Contains(doc.Algorithms, p.Algorithm()) {
		return fmt.Errorf("%w with %s (it lists %q); on Auth0, turn on DPoP for the API", ErrNoDPoP, p.Algorithm(), doc.Algorithms)
	}
	return nil
}

// bound checks that the token the issuer gave is the bound one asked for.
func bound(tokenType string) error {
	if !strings.EqualFold(tokenType, "DPoP") {
		return fmt.Errorf("%w (token_type %q)", ErrNotBound, tokenType)
	}
	return nil
}

// withProofs returns a copy of client whose POSTs to tokenURL carry proofs.
func withProofs(client *http.Client, p Prover, tokenURL string) *http.Client {
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *client
	c.Transport = p.TokenTransport(base, tokenURL)
	return &c
}
