package dpop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// maxErrorBody bounds how much of a token endpoint's 400 is read to find
// out whether it asks for a nonce; a real one is a few hundred bytes.
const maxErrorBody = 64 << 10

// TokenTransport returns a transport that sends, through base, a fresh
// proof by the prover's key with every POST to tokenURL (RFC 9449 §5),
// and nothing with any other request.
func (p *Prover) TokenTransport(base http.RoundTripper, tokenURL string) http.RoundTripper {
	return &proofTransport{base: base, prover: p, tokenURL: tokenURL}
}

// proofTransport adds the proofs. It keeps the last DPoP-Nonce the token
// endpoint gave, and when the endpoint answers use_dpop_nonce it sends
// the request once more with the new nonce (RFC 9449 §8).
type proofTransport struct {
	base     http.RoundTripper
	prover   *Prover
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
	proof, err := t.prover.Proof(req.Method, t.tokenURL, "", nonce)
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
