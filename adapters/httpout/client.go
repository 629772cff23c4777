// Package httpout is the client a hop uses to call the next one: it forwards
// the caller's token and tracing headers, bounds the call by the hop's
// timeout, and turns every way the upstream can fail into a domain error.
package httpout

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/trustchain/trustchain/adapters/httpin"
	"github.com/trustchain/trustchain/adapters/relay"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

var _ ports.ProductSource = (*Client)(nil)

const (
	// maxProductsBody caps an upstream answer; a catalogue larger than
	// this is not something a hop should buffer.
	maxProductsBody = 8 << 20
	// maxRejectionBody caps the 401/403 body passed back to the client.
	maxRejectionBody = 64 << 10
)

// Config configures a Client.
type Config struct {
	// URL is the next hop's base URL, e.g. http://service-c:8080.
	URL string
	// Timeout bounds one call, including reading the body.
	Timeout time.Duration
	// MaxIdleConnsPerHost sizes the keep-alive pool; Go's default of 2
	// would make every burst open new connections.
	MaxIdleConnsPerHost int
	// TLS, when set, is used for https upstreams (native SPIFFE mTLS).
	TLS *tls.Config
	// WrapTransport, when set, decorates the transport (metrics, tracing).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Client calls GET /products on the next hop.
type Client struct {
	endpoint string
	timeout  time.Duration
	http     *http.Client
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("upstream %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		return nil, errors.New("upstream timeout must be positive")
	}
	idle := cfg.MaxIdleConnsPerHost
	if idle <= 0 {
		idle = 64
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // hop-to-hop traffic never goes through an egress proxy
	t.MaxIdleConns = idle * 4
	t.MaxIdleConnsPerHost = idle
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = cfg.Timeout
	t.TLSClientConfig = cfg.TLS
	var rt http.RoundTripper = t
	if cfg.WrapTransport != nil {
		rt = cfg.WrapTransport(rt)
	}
	return &Client{
		endpoint: base.JoinPath(httpin.ProductsPath).String(),
		timeout:  cfg.Timeout,
		// No client-level Timeout: the context deadline below covers the
		// whole call and, unlike http.Client.Timeout, tells us it was ours.
		http: &http.Client{
			Transport: rt,
			// A hop never follows redirects: the token must not leave for
			// another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// CloseIdleConnections drops pooled connections (used on shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// ListProducts asks the next hop for the catalogue, forwarding the relay in
// ctx. A deadline already on ctx (the caller's own budget) is kept if it is
// shorter than this hop's timeout: timeouts nest down the chain.
func (c *Client) ListProducts(ctx context.Context) ([]domain.Product, error) {
	rel, ok := relay.FromContext(ctx)
	if !ok || rel.Token() == "" {
		// Forwarding without the caller's token would only earn a 401
		// further down; refuse here so the bug is obvious.
		return nil, fmt.Errorf("call upstream: %w", domain.ErrTokenMissing)
	}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(callCtx, http.MethodGet, c.endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("call upstream: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	rel.Apply(req)

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, callCtx, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
		products, err := decodeProducts(resp.Body)
		if err != nil {
			if ctxErr := c.contextError(ctx, callCtx); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("call upstream: %w: %v", domain.ErrUpstreamBadResponse, err)
		}
		return products, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRejectionBody))
		return nil, fmt.Errorf("call upstream: %w", &domain.UpstreamRejection{
			Status:    resp.StatusCode,
			Challenge: resp.Header.Get("WWW-Authenticate"),
			Body:      body,
		})
	case resp.StatusCode == http.StatusGatewayTimeout:
		// The hop below ran out of its own budget: still a timeout here.
		return nil, fmt.Errorf("call upstream: %w: status %d", domain.ErrUpstreamTimeout, resp.StatusCode)
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("call upstream: %w: status %d", domain.ErrUpstreamUnavailable, resp.StatusCode)
	default:
		return nil, fmt.Errorf("call upstream: %w: unexpected status %d", domain.ErrUpstreamBadResponse, resp.StatusCode)
	}
}

// transportError classifies a failed round trip.
func (c *Client) transportError(parent, call context.Context, err error) error {
	if ctxErr := c.contextError(parent, call); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("call upstream: %w: %v", domain.ErrUpstreamUnavailable, err)
}

// contextError tells a client that went away (context.Canceled, passed up
// as is) from this hop's budget running out (a timeout).
func (c *Client) contextError(parent, call context.Context) error {
	if parent.Err() != nil && !errors.Is(parent.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("call upstream: %w", parent.Err())
	}
	if call.Err() != nil {
		return fmt.Errorf("call upstream: %w: no answer within %s", domain.ErrUpstreamTimeout, c.timeout)
	}
	return nil
}

// decodeProducts reads a JSON array of products and nothing else. null, an
// object, trailing data, or any invalid product makes the whole answer bad.
func decodeProducts(r io.Reader) ([]domain.Product, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxProductsBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxProductsBody {
		return nil, fmt.Errorf("body exceeds %d bytes", maxProductsBody)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, errors.New("body is not a JSON array")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var products []domain.Product
	if err := dec.Decode(&products); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the product list")
	}
	if products == nil {
		products = []domain.Product{}
	}
	return products, nil
}
