// Package client calls the next hop: it forwards the caller's verified
// token and request id, bounds each call by the hop's budget, reads the
// answer strictly through package wire, and turns every way the next hop
// can fail into the domain error the table in wire names for it.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

var _ ports.ProductSource = (*Client)(nil)

const (
	// maxResponseHeaderBytes caps the next hop's response headers; Go's
	// default is 10 MB.
	maxResponseHeaderBytes = 64 << 10
	// maxErrorBody caps an error answer from the next hop.
	maxErrorBody = 4 << 10
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
	// WrapTransport, when set, decorates the transport (tracing).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Propagate, when set, writes the trace context of ctx into each
	// outbound request's headers (tracing off: the caller's trace still
	// reaches the next hop).
	Propagate func(ctx context.Context, h http.Header)
	// Observe, when set, learns each call's outcome: the status (0 when no
	// answer came), the outcome kind (wire.KindNone, wire.KindTimeout, …) and the
	// time the whole call took, body included.
	Observe func(ctx context.Context, status int, kind string, elapsed time.Duration)
}

// Client calls the next hop. It forwards the caller's credentials from the
// context, bounds each call by the hop's budget, reads answers strictly and
// turns every way the next hop can fail into a domain error.
type Client struct {
	base      url.URL
	timeout   time.Duration
	transport *http.Transport
	rt        http.RoundTripper // transport, possibly wrapped (tracing)
	propagate func(ctx context.Context, h http.Header)
	observe   func(ctx context.Context, status int, kind string, elapsed time.Duration)
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.User != nil {
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
	t.MaxResponseHeaderBytes = maxResponseHeaderBytes
	// Answers are small JSON on a local network: compression would cost
	// more CPU than it saves.
	t.DisableCompression = true
	var rt http.RoundTripper = t
	if cfg.WrapTransport != nil {
		rt = cfg.WrapTransport(rt)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	return &Client{
		base:      *base,
		timeout:   cfg.Timeout,
		propagate: cfg.Propagate,
		observe:   cfg.Observe,
		// The round tripper is called directly, not through an http.Client:
		// a hop never follows a redirect (the token must not leave for
		// another host), has no cookies, and bounds each call with its own
		// context deadline, which unlike http.Client.Timeout tells us the
		// timeout was ours. So the client's redirect bookkeeping (a copy of
		// every request's headers) would buy nothing.
		transport: t,
		rt:        rt,
	}, nil
}

// CloseIdleConnections drops pooled connections (used on shutdown).
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// ListProducts asks the next hop for the page req names.
func (c *Client) ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
	var page domain.Page
	err := c.call(ctx, wire.ProductsPath, wire.PageQuery(req), wire.PageBodyLimit(req.Limit()), func(resp *http.Response, body io.Reader) error {
		products, err := wire.DecodeProducts(body, req.Limit())
		if err != nil {
			return err
		}
		link, more, err := wire.ParseNextLink(resp.Header.Values("Link"))
		if err != nil {
			return err
		}
		if page, err = domain.NewPage(req, products, more); err != nil {
			return err
		}
		if next, _ := page.Next(); more && next != link {
			return fmt.Errorf("the Link header does not name the page after this one")
		}
		return nil
	})
	return page, err
}

// GetProduct asks the next hop for one product.
func (c *Client) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	var p domain.Product
	err := c.call(ctx, wire.ProductPath(id), "", wire.ProductBodyLimit, func(_ *http.Response, body io.Reader) error {
		var err error
		if p, err = wire.DecodeProduct(body); err != nil {
			return err
		}
		if p.ID() != id {
			return fmt.Errorf("asked for product %d, got %d", id, p.ID())
		}
		return nil
	})
	return p, err
}

// call makes one GET to the next hop and hands a 200's body, capped at
// limit bytes, to decode. Every other answer and every failure becomes the
// domain error a caller of this hop should see.
func (c *Client) call(ctx context.Context, path, query string, limit int64, decode func(*http.Response, io.Reader) error) (err error) {
	start := time.Now()
	status, kind := 0, ""
	defer func() {
		if c.observe != nil {
			if kind == "" {
				kind = wire.OutcomeKind(err)
			}
			c.observe(ctx, status, kind, time.Since(start))
		}
	}()
	creds, ok := domain.CredentialsFrom(ctx)
	if !ok || creds.Token() == "" {
		// Forwarding without the caller's token would only earn a 401
		// further down: this is a wiring bug, refused here.
		return errors.New("call upstream: no credentials to forward")
	}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req := c.newRequest(callCtx, path, query, creds)
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		err = &url.Error{Op: "Get", URL: req.URL.Redacted(), Err: err}
		if ctxErr := c.contextError(ctx, callCtx); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("call upstream: %w: %v", domain.ErrUpstreamUnavailable, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	if status != http.StatusOK {
		// An answer that comes as this hop's budget runs out is the
		// budget's: the next hop may have seen the call cut off and said
		// so (a 499), which must not reach the caller as a bad answer.
		if ctxErr := c.contextError(ctx, callCtx); ctxErr != nil {
			return ctxErr
		}
	}

	switch {
	case resp.StatusCode == http.StatusOK:
		if err := expectJSON(resp.Header); err != nil {
			return fmt.Errorf("call upstream: %w: %v", domain.ErrUpstreamBadResponse, err)
		}
		if err := decode(resp, http.MaxBytesReader(nil, resp.Body, limit)); err != nil {
			if ctxErr := c.contextError(ctx, callCtx); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("call upstream: %w: %v", domain.ErrUpstreamBadResponse, err)
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("call upstream: %w", readRejection(resp))
	}
	kind, upstream := wire.UpstreamError(resp.StatusCode, errorCode(resp))
	err = fmt.Errorf("call upstream: %w: status %d", upstream, resp.StatusCode)
	// A 503 (unavailable or overloaded) goes up as a 503 with the next
	// hop's advice: no hop retries, the client at the edge decides.
	if retry, ok := wire.ParseRetryAfter(resp.Header); ok && resp.StatusCode == http.StatusServiceUnavailable {
		err = wire.WithRetryAfter(err, retry)
	}
	return err
}

// errorCode is the "error" of a 503's JSON body, which tells an overloaded
// hop from an unavailable store; "" for anything else or anything odd.
func errorCode(resp *http.Response) string {
	if resp.StatusCode != http.StatusServiceUnavailable || expectJSON(resp.Header) != nil {
		return ""
	}
	body, err := wire.DecodeError(http.MaxBytesReader(nil, resp.Body, maxErrorBody))
	if err != nil {
		return ""
	}
	return body.Code
}

// newRequest builds the GET for the next hop: the verified token from the
// credentials, the request id, and nothing else of the caller's. Tracing
// headers are the wrapping transport's job.
func (c *Client) newRequest(ctx context.Context, path, query string, creds domain.Credentials) *http.Request {
	u := c.base
	u.Path += path
	u.RawQuery = query
	// What http.NewRequestWithContext would build, without parsing a URL
	// this client already holds in parts.
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 4),
		Host:       u.Host,
	}).WithContext(ctx)
	// Built anew rather than copied from the caller's request: the client
	// reads only what the core hands it (domain.Credentials), never the
	// server's state, at the cost of one string per call.
	req.Header["Authorization"] = []string{"Bearer " + creds.Token()}
	req.Header["Accept"] = acceptJSON
	req.Header[wire.HeaderRequestID] = []string{creds.RequestID()}
	if c.propagate != nil {
		c.propagate(ctx, req.Header)
	}
	return req
}

// contextError tells a client that went away (context.Canceled, passed up
// as is) from this hop's budget running out (a timeout).
func (c *Client) contextError(parent, call context.Context) error {
	if err := parent.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("call upstream: %w", err)
	}
	if err := call.Err(); err != nil {
		return fmt.Errorf("call upstream: %w: no answer within %s: %w", domain.ErrUpstreamTimeout, c.timeout, err)
	}
	return nil
}

// acceptJSON is every request's Accept; net/http never changes it.
var acceptJSON = []string{wire.ContentType}

// expectJSON refuses an answer that does not say it is JSON: an HTML error
// page from a proxy must not be read as a product list.
func expectJSON(h http.Header) error {
	if v := h["Content-Type"]; len(v) == 1 && v[0] == wire.ContentType {
		return nil // what every hop sends; the general parse allocates
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != wire.ContentType {
		return fmt.Errorf("content type %q is not application/json", wire.Truncate(h.Get("Content-Type"), 64))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("charset %q is not utf-8", wire.Truncate(cs, 32))
	}
	return nil
}

// readRejection reads a 401 or 403 from the next hop. What goes back up is
// this hop's own answer for it: the status, the body's code when the table
// has it for that status (else this hop's code for the status), the
// table's message for that code, and the challenge rebuilt from its
// error, scope and algs. The next hop's text never reaches the client: a
// compromised hop could otherwise write to the user.
func readRejection(resp *http.Response) *wire.UpstreamRejection {
	own := wire.ProblemFor(domain.ErrTokenInvalid)
	if resp.StatusCode == http.StatusForbidden {
		own = wire.ProblemFor(domain.ErrPeerForbidden)
	}
	rejection := &wire.UpstreamRejection{Status: resp.StatusCode, Challenge: own.Challenge, Code: own.Code, Message: own.Message}

	challenge, ok := relayChallenge(resp.Header.Values("WWW-Authenticate"))
	if !ok || (challenge == "" && resp.StatusCode == http.StatusUnauthorized) {
		// A 401 must say how to authenticate (RFC 9110 §15.5.2).
		return rejection
	}
	if expectJSON(resp.Header) != nil {
		return rejection
	}
	body, err := wire.DecodeError(http.MaxBytesReader(nil, resp.Body, maxErrorBody))
	if err != nil {
		return rejection
	}
	p, ok := wire.Refusal(resp.StatusCode, body.Code)
	if !ok {
		return rejection
	}
	rejection.Challenge, rejection.Code, rejection.Message = challenge, p.Code, p.Message
	return rejection
}
