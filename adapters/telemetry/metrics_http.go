package telemetry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/trustchain/trustchain/internal/statuswriter"
)

// Outbound error kinds, the error label of trustchain_upstream_requests_total.
const (
	UpstreamOK          = "none"
	UpstreamTimeout     = "timeout"
	UpstreamConnection  = "connection"
	UpstreamBadResponse = "bad_response"
	UpstreamRejected    = "rejected"
	UpstreamCanceled    = "canceled"
)

// codeClassNone labels an outbound call that produced no response at all.
const codeClassNone = "none"

// Middleware counts and times requests to one route. route is the pattern
// the handler is registered under (a constant of the wiring, never the
// request's path), so the label set stays bounded no matter what clients
// send:
//
//	mux.Handle("GET /products", m.Middleware("/products", api))
//	mux.Handle("/", m.Middleware(telemetry.RouteOther, http.NotFoundHandler()))
func (m *Metrics) Middleware(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statuswriter.New(w)
		defer func() {
			code := sw.Status()
			// A panicking handler never wrote its status; the server will
			// drop the connection, which the client sees as a server fault.
			rec := recover()
			if rec != nil {
				code = http.StatusInternalServerError
			}
			class := codeClass(code)
			m.httpRequests.WithLabelValues(route, class).Inc()
			m.httpDuration.WithLabelValues(route, class).Observe(time.Since(start).Seconds())
			if rec != nil {
				panic(rec)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// codeClass turns a status into "2xx" and friends; a handler that wrote
// nothing sent 200.
func codeClass(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// Transport counts and times calls to one upstream. upstream is a fixed name
// from the wiring (say "service-c"). The duration ends when the response
// headers arrive: the body is read by the caller, whose own errors (a product
// list that does not parse) are not visible here.
func (m *Metrics) Transport(upstream string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(req)
		class, kind := codeClassNone, UpstreamOK
		if err != nil {
			kind = transportErrorKind(req.Context(), err)
		} else {
			class = codeClass(resp.StatusCode)
			kind = responseErrorKind(resp.StatusCode)
		}
		m.upstreamRequests.WithLabelValues(upstream, class, kind).Inc()
		m.upstreamDuration.WithLabelValues(upstream, class, kind).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// transportErrorKind names why no response came back. The request's context
// is consulted too: once it is done, that is the reason, even when the
// transport reports it as a bare "request canceled". http.Client.Timeout is
// the one case this cannot see reliably (the client may cancel without
// touching the context), so give calls a context deadline instead.
func transportErrorKind(ctx context.Context, err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return UpstreamTimeout
	case errors.Is(err, context.Canceled), errors.Is(ctx.Err(), context.Canceled):
		return UpstreamCanceled
	case errors.As(err, &netErr) && netErr.Timeout():
		return UpstreamTimeout
	}
	// Everything else a RoundTripper returns is a failure to get an answer
	// over the wire: refused, reset, DNS, TLS, EOF.
	return UpstreamConnection
}

// responseErrorKind mirrors how the HTTP client treats statuses: 401 and 403
// are the upstream refusing the caller, 504 is a hop further down timing
// out, other 4xx and 5xx are answers it cannot use.
func responseErrorKind(code int) string {
	switch {
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return UpstreamRejected
	case code == http.StatusGatewayTimeout:
		return UpstreamTimeout
	case code >= 400:
		return UpstreamBadResponse
	}
	return UpstreamOK
}
