package oidc

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// maxRedirects bounds the same-origin redirects discovery and the JWKS may
// take.
const maxRedirects = 3

// newHTTPClient copies base (never http.DefaultClient, whose settings other
// code may change), bounds every call by timeout, and refuses any redirect
// that leaves the origin it started from or downgrades to http: whoever
// answers the JWKS URL decides which tokens pass, so the path to it must
// not be steerable by a redirect.
func newHTTPClient(base *http.Client, timeout time.Duration) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	if c.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxResponseHeaderBytes = 64 << 10
		c.Transport = t
	}
	c.Timeout = timeout
	c.CheckRedirect = sameOriginRedirect
	return &c
}

var errRedirect = errors.New("redirect refused")

func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", errRedirect, maxRedirects)
	}
	if !sameOrigin(req.URL, via[0].URL) {
		return fmt.Errorf("%w: %s redirected to another origin %s", errRedirect, via[0].URL.Redacted(), req.URL.Redacted())
	}
	return nil
}

// sameOrigin compares scheme, host and port, so https to http is refused too.
func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && a.Hostname() == b.Hostname() && a.Port() == b.Port()
}
