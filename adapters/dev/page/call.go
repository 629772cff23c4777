package page

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	productsPath = "/products"
	// callTimeout bounds one call to the chain; A's own budget is 8s.
	callTimeout = 15 * time.Second
	// maxBodyBytes bounds what the page reads of an answer; it shows at
	// most maxShownBytes of it.
	maxBodyBytes  = 1 << 20
	maxShownBytes = 2 << 10
)

// The calls the page's buttons make.
const (
	callWithToken = "token"
	callNoToken   = "none"
	callExpired   = "expired"
	callDirectB   = "direct-b"
	callReplay    = "replay"
)

// callResult is what one button press did, as the page shows it.
type callResult struct {
	Kind      string // the button: callWithToken, callNoToken, …
	Label     string // what was tried
	Target    string // the URL called
	RequestID string // sent as X-Request-Id, to look the hops' decisions up
	Status    int    // 0 when no HTTP answer came
	Refused   string // why no HTTP answer came (a refused TLS handshake)
	Notice    string // why nothing was called
	Products  []product
	Metadata  string // A's serviceA_metadata
	Body      string // the answer as it came, when it was not a product list
	Challenge string // the answer's WWW-Authenticate, when it refused the token
	DPoP      bool   // the token went as DPoP, with a proof
}

type product struct {
	ID    int64       `json:"id"`
	Name  string      `json:"name"`
	Price json.Number `json:"price"` // as sent: exact decimals stay exact
}

// envelope is A's answer on success.
type envelope struct {
	Products []product `json:"products"`
	Metadata string    `json:"serviceA_metadata"`
}

// call sends GET target with token (if any) and a fresh request id, and
// records what came back. With a prover the token goes as DPoP with a
// fresh proof, sent again once if the server asks for its nonce. A refused
// connection is a result, not an error: showing it is the point of the
// direct-to-B button.
func call(ctx context.Context, client *http.Client, label, target, token string, prover Prover) *callResult {
	res := &callResult{Label: label, Target: target, DPoP: token != "" && prover != nil}
	id, err := requestID()
	if err != nil {
		res.Notice = err.Error()
		return res
	}
	res.RequestID = id
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := send(ctx, client, target, id, token, prover, "")
	if err == nil && prover != nil && resp.StatusCode == http.StatusUnauthorized &&
		strings.Contains(resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce") && resp.Header.Get("DPoP-Nonce") != "" {
		resp.Body.Close()
		resp, err = send(ctx, client, target, id, token, prover, resp.Header.Get("DPoP-Nonce"))
	}
	if err != nil {
		res.Refused = transportReason(err)
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	if resp.StatusCode == http.StatusUnauthorized {
		res.Challenge = strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		res.Refused = "the answer broke off: " + transportReason(err)
		return res
	}
	var env envelope
	if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &env) == nil && env.Products != nil {
		res.Products, res.Metadata = env.Products, env.Metadata
		return res
	}
	if len(body) > maxShownBytes {
		body = append(body[:maxShownBytes:maxShownBytes], "…"...)
	}
	res.Body = string(body)
	return res
}

// send sends one GET with the token as Bearer, or as DPoP with a fresh
// proof when there is a prover.
func send(ctx context.Context, client *http.Client, target, requestID, token string, prover Prover, nonce string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Request-Id", requestID)
	switch {
	case token != "" && prover != nil:
		proof, err := prover.Proof(http.MethodGet, target, token, nonce)
		if err != nil {
			return nil, fmt.Errorf("make a DPoP proof: %w", err)
		}
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return client.Do(req)
}

// withTransport returns a copy of client whose transport wrap makes from
// client's own.
func withTransport(client *http.Client, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *client
	c.Transport = wrap(base)
	return &c
}

// transportReason is the error without Go's "Get <url>:" prefix, which the
// page shows separately.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func requestID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate request id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
