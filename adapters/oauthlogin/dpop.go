package oauthlogin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Prover makes DPoP proofs (RFC 9449) with the key the token is to be
// bound to.
type Prover interface {
	// Algorithm is the JWS algorithm of the proofs, e.g. ES256.
	Algorithm() string
	// Proof returns a fresh proof for a request with method to target
	// (no access token: these go to the token endpoint), carrying the
	// server's nonce when it is not "".
	Proof(method, target, nonce string) (string, error)
}

var (
	// ErrNoDPoP: the issuer's discovery does not offer DPoP with the
	// key's algorithm (dpop_signing_alg_values_supported, RFC 9449 §5.1).
	ErrNoDPoP = errors.New("the issuer does not offer DPoP")
	// ErrNotBound: a proof was sent but the token came back unbound
	// (token_type is not DPoP): the issuer ignored it.
	ErrNotBound = errors.New("the issuer did not bind the token to the DPoP key")
)

// maxErrorBody bounds how much of a token endpoint's 400 is read to find
// out whether it asks for a nonce; a real one is a few hundred bytes.
const maxErrorBody = 64 << 10

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

// withProofs returns a copy of client that sends a fresh DPoP proof with
// every POST to tokenURL, and nothing else to any other address.
func withProofs(client *http.Client, p Prover, tokenURL string) *http.Client {
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *client
	c.Transport = &proofTransport{base: base, prover: p, tokenURL: tokenURL}
	return &c
}

// proofTransport adds the proofs. It keeps the last DPoP-Nonce the token
// endpoint gave, and when the endpoint answers use_dpop_nonce it sends
// the request once more with the new nonce (RFC 9449 §8).
type proofTransport struct {
	base     http.RoundTripper
	prover   Prover
	tokenURL string

	mu    sync.Mutex
	nonce string
}

func (t *proofTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.URL.String() != t.tokenURL {
		return t.base.RoundTrip(req)
	}
	resp, err := t.send(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest || req.GetBody == nil {
		return resp, err
	}
	retry, err := wantsNonce(resp)
	if err != nil {
		return nil, err
	}
	if !retry {
		return resp, nil
	}
	resp.Body.Close()
	again := req.Clone(req.Context())
	if again.Body, err = req.GetBody(); err != nil {
		return nil, err
	}
	return t.send(again)
}

// send sends req with a proof carrying the current nonce, and keeps the
// nonce the answer gives.
func (t *proofTransport) send(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	nonce := t.nonce
	t.mu.Unlock()
	proof, err := t.prover.Proof(req.Method, t.tokenURL, nonce)
	if err != nil {
		return nil, fmt.Errorf("make a DPoP proof: %w", err)
	}
	// A RoundTripper must not change the caller's request.
	r := req.Clone(req.Context())
	r.Header.Set("DPoP", proof)
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		t.mu.Lock()
		t.nonce = n
		t.mu.Unlock()
	}
	return resp, nil
}

// wantsNonce reports whether a 400 is the use_dpop_nonce error carrying a
// nonce, leaving resp's body readable for the caller either way.
func wantsNonce(resp *http.Response) (bool, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e) // not JSON: not a nonce request
	return e.Error == "use_dpop_nonce" && resp.Header.Get("DPoP-Nonce") != "", nil
}

// bound checks that the token the issuer gave is the bound one asked for.
func bound(tokenType string) error {
	if !strings.EqualFold(tokenType, "DPoP") {
		return fmt.Errorf("%w (token_type %q)", ErrNotBound, tokenType)
	}
	return nil
}
