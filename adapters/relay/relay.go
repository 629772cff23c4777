// Package relay carries what a hop passes on to the next one: the caller's
// bearer token, unchanged, and the tracing headers. Everything else the client
// sent (cookies, custom headers) stays at the edge.
package relay

import (
	"context"
	"net/http"
	"strings"
)

// tracingHeaders are passed on so Istio/Envoy can stitch one trace together
// across the hops. x-b3-* is matched by prefix. When tracing is on, the
// client's propagator then replaces them with the hop's own child span.
var tracingHeaders = []string{"X-Request-Id", "Traceparent", "Tracestate", "B3"}

const b3Prefix = "X-B3-"

// b3ParentSpanID names the caller's parent, which is wrong one hop further
// down and which no propagator overwrites, so it is not passed on.
const b3ParentSpanID = "X-B3-Parentspanid"

// Relay is the per-request material to forward.
type Relay struct {
	token  string
	header http.Header
}

// FromRequest captures the token and the tracing headers of an inbound
// request. The token is the one the auth middleware already verified.
func FromRequest(r *http.Request, token string) Relay {
	h := make(http.Header)
	for _, name := range tracingHeaders {
		if v := r.Header.Values(name); len(v) > 0 {
			h[name] = append([]string(nil), v...)
		}
	}
	for name, v := range r.Header {
		if strings.HasPrefix(name, b3Prefix) && name != b3ParentSpanID {
			h[name] = append([]string(nil), v...)
		}
	}
	return Relay{token: token, header: h}
}

// Token returns the bearer token to forward.
func (r Relay) Token() string { return r.token }

// Apply sets the relayed headers on an outbound request. Headers already set
// on req win, so a tracing transport that injects its own child span context
// is not overwritten by the parent's.
func (r Relay) Apply(req *http.Request) {
	for name, v := range r.header {
		if req.Header.Get(name) == "" {
			req.Header[name] = append([]string(nil), v...)
		}
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
}

type ctxKey struct{}

// NewContext returns ctx carrying r.
func NewContext(ctx context.Context, r Relay) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the relay stored by NewContext.
func FromContext(ctx context.Context) (Relay, bool) {
	r, ok := ctx.Value(ctxKey{}).(Relay)
	return r, ok
}
