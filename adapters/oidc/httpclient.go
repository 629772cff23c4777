package oidc

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// newHTTPClient copies base (never http.DefaultClient, whose settings other
// code may change) and bounds every call: the whole exchange by timeout and
// the response body by maxBytes. Bounding at the transport covers go-oidc's
// discovery request too, which reads its body with io.ReadAll.
func newHTTPClient(base *http.Client, timeout time.Duration, maxBytes int64) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	transport := c.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	c.Transport = cappedTransport{base: transport, maxBytes: maxBytes}
	c.Timeout = timeout
	return &c
}

type cappedTransport struct {
	base     http.RoundTripper
	maxBytes int64
}

func (t cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, remaining: t.maxBytes}
	return resp, nil
}

// cappedBody fails, rather than truncates, past the limit: a cut-off JWKS
// could otherwise parse as a smaller, wrong key set.
type cappedBody struct {
	io.ReadCloser
	remaining int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.remaining < 0 {
		return 0, errBodyTooLarge
	}
	// Read one byte past the limit so an exactly full body still succeeds
	// and a larger one is detected.
	if int64(len(p)) > b.remaining+1 {
		p = p[:b.remaining+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.remaining -= int64(n)
	if b.remaining < 0 {
		return n + int(b.remaining), errBodyTooLarge
	}
	return n, err
}

var errBodyTooLarge = errors.New("response body exceeds the size limit")
