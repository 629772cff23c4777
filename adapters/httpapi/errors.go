package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/trustchain/trustchain/domain"
)

// problem is how one domain error shows on the wire, and what the hop above
// makes of it when it reads the answer back.
type problem struct {
	err       error // the domain error the row is for
	status    int
	code      string // the body's "error"
	message   string
	challenge string // WWW-Authenticate, for 401 and 403 from the token layer
	// upstream is the error a caller of this hop sees in this answer: a
	// timeout below stays a timeout above, an empty store is still not
	// found, while anything this hop failed at is a bad gateway there.
	// Every row with the same status agrees on it, so a status alone can
	// be read back.
	upstream error
	// kind labels the outcome of a call to the next hop that produced this
	// error, in trustchain_upstream_requests_total.
	kind string
}

// Outcomes of a call to the next hop, the error label of the upstream metrics.
const (
	KindNone        = "none"
	KindTimeout     = "timeout"
	KindConnection  = "connection"
	KindBadResponse = "bad_response"
	KindRejected    = "rejected"
	KindCanceled    = "canceled"
	KindUnavailable = "unavailable"
)

// UpstreamKinds lists every outcome label a call to the next hop can have.
func UpstreamKinds() []string {
	return []string{KindNone, KindTimeout, KindConnection, KindBadResponse, KindRejected, KindCanceled, KindUnavailable}
}

// errRejected stands for a 401 or 403 from the next hop in the table; the
// error a client returns for one is an *UpstreamRejection.
var errRejected = errors.New("upstream refused the caller")

// problems is the one table. Order matters where errors overlap: the first
// row whose err matches wins.
var problems = []problem{
	{err: domain.ErrInvalidRequest, status: http.StatusBadRequest, code: "invalid_request", message: "the request is malformed",
		upstream: domain.ErrInvalidRequest, kind: KindNone},
	{err: domain.ErrTokenMissing, status: http.StatusUnauthorized, code: "unauthorized", message: "a bearer token is required",
		challenge: `Bearer`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrTokenInvalid, status: http.StatusUnauthorized, code: "invalid_token", message: "the access token is invalid",
		challenge: `Bearer error="invalid_token"`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrInsufficientScope, status: http.StatusForbidden, code: "insufficient_scope", message: "the access token lacks the required scope",
		challenge: `Bearer error="insufficient_scope"`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrPeerForbidden, status: http.StatusForbidden, code: "forbidden", message: "the calling workload is not allowed",
		upstream: errRejected, kind: KindRejected},
	{err: domain.ErrNotFound, status: http.StatusNotFound, code: "not_found", message: "no such product",
		upstream: domain.ErrNotFound, kind: KindNone},
	{err: domain.ErrVerifierNotReady, status: http.StatusServiceUnavailable, code: "unavailable", message: "the token verifier is not ready",
		upstream: domain.ErrSourceUnavailable, kind: KindUnavailable},
	{err: domain.ErrSourceUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: "the product store is unavailable",
		upstream: domain.ErrSourceUnavailable, kind: KindUnavailable},
	{err: domain.ErrSourceTimeout, status: http.StatusGatewayTimeout, code: "timeout", message: "the product store did not answer in time",
		upstream: domain.ErrUpstreamTimeout, kind: KindTimeout},
	{err: domain.ErrUpstreamTimeout, status: http.StatusGatewayTimeout, code: "upstream_timeout", message: "the next service did not answer in time",
		upstream: domain.ErrUpstreamTimeout, kind: KindTimeout},
	{err: domain.ErrUpstreamUnavailable, status: http.StatusBadGateway, code: "bad_gateway", message: "the next service failed",
		upstream: domain.ErrUpstreamUnavailable, kind: KindConnection},
	{err: domain.ErrUpstreamBadResponse, status: http.StatusBadGateway, code: "bad_gateway", message: "the next service returned an invalid answer",
		upstream: domain.ErrUpstreamUnavailable, kind: KindBadResponse},
	{err: domain.ErrInvalidProduct, status: http.StatusInternalServerError, code: "internal", message: "the product store holds an invalid product",
		upstream: domain.ErrUpstreamUnavailable, kind: KindBadResponse},
}

// internalProblem answers an error no row matches: a bug, not a client's or
// a dependency's fault.
var internalProblem = problem{status: http.StatusInternalServerError, code: "internal", message: "internal error",
	upstream: domain.ErrUpstreamUnavailable, kind: KindBadResponse}

// clientClosedRequest is nginx's status for a client that went away; it is
// never seen by that client but keeps logs and metrics honest.
const clientClosedRequest = 499

// problemFor is the server direction: the row for err.
func problemFor(err error) problem {
	for _, p := range problems {
		if errors.Is(err, p.err) {
			return p
		}
	}
	return internalProblem
}

// problemForStatus is the client direction: the row for a status the next
// hop answered with. A status no row has is an answer this protocol does
// not use (a redirect, 405, 418): the next hop is broken or not ours.
func problemForStatus(status int) (problem, bool) {
	for _, p := range problems {
		if p.status == status {
			return p, true
		}
	}
	return problem{}, false
}

// upstreamError turns the next hop's status into the outcome label for the
// metrics and the domain error a caller of this hop sees.
func upstreamError(status int) (kind string, err error) {
	if p, ok := problemForStatus(status); ok {
		if p.kind == KindConnection {
			// It answered: whatever failed below, the wire worked.
			return KindBadResponse, p.upstream
		}
		return p.kind, p.upstream
	}
	if status >= 500 {
		return KindBadResponse, domain.ErrUpstreamUnavailable
	}
	return KindBadResponse, domain.ErrUpstreamBadResponse
}

// outcomeKind labels the error a call to the next hop returned.
func outcomeKind(err error) string {
	var rejection *UpstreamRejection
	switch {
	case err == nil:
		return KindNone
	case errors.As(err, &rejection):
		return KindRejected
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return problemFor(err).kind
}

// reasonFor names a handled error in the access log: the token reason when
// it is a refused token, otherwise the row's code.
func reasonFor(err error) string {
	if reason := domain.TokenReason(err); reason != "" {
		return reason
	}
	var rejection *UpstreamRejection
	if errors.As(err, &rejection) {
		return "upstream_" + rejection.Code
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return problemFor(err).code
}
