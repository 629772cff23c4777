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
// records what came back. A refused connection is a result, not an error:
// showing it is the point of the direct-to-B button.
func call(ctx context.Context, client *http.Client, label, target, token string) *callResult {
	res := &callResult{Label: label, Target: target}
	id, err := requestID()
	if err != nil {
		res.Notice = err.Error()
		return res
	}
	res.RequestID = id
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		res.Notice = fmt.Sprintf("cannot call %s: %v", target, err)
		return res
	}
	req.Header.Set("X-Request-Id", id)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		res.Refused = transportReason(err)
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
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
