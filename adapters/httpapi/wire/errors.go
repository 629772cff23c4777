package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/trustchain/trustchain/domain"
)

// Problem is how one domain error shows on the wire, and what the hop above
// makes of it when it reads the answer back.
type Problem struct {
	err       error // the domain error the row is for
	Status    int
	Code      string // the body's "error"
	Message   string
	Challenge string // WWW-Authenticate, for 401 and 403 from the token layer
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
var problems = []Problem{
	{err: domain.ErrInvalidRequest, Status: http.StatusBadRequest, Code: "invalid_request", Message: "the request is malformed",
		upstream: domain.ErrInvalidRequest, kind: KindNone},
	{err: domain.ErrTokenMissing, Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a bearer token is required",
		Challenge: `Bearer`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrTokenInvalid, Status: http.StatusUnauthorized, Code: "invalid_token", Message: "the access token is invalid",
		Challenge: `Bearer error="invalid_token"`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrProofInvalid, Status: http.StatusUnauthorized, Code: "invalid_dpop_proof", Message: "the DPoP proof is invalid",
		Challenge: `DPoP error="invalid_dpop_proof"`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrUseDPoPNonce, Status: http.StatusUnauthorized, Code: "use_dpop_nonce", Message: "the DPoP proof must carry the nonce this answer gives",
		Challenge: `DPoP error="use_dpop_nonce"`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrInsufficientScope, Status: http.StatusForbidden, Code: "insufficient_scope", Message: "the access token lacks the required scope",
		Challenge: `Bearer error="insufficient_scope"`, upstream: errRejected, kind: KindRejected},
	{err: domain.ErrPeerForbidden, Status: http.StatusForbidden, Code: "forbidden", Message: "the calling workload is not allowed",
		upstream: errRejected, kind: KindRejected},
	{err: domain.ErrNotFound, Status: http.StatusNotFound, Code: "not_found", Message: "no such product",
		upstream: domain.ErrNotFound, kind: KindNone},
	{err: domain.ErrVerifierNotReady, Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the token verifier is not ready",
		upstream: domain.ErrSourceUnavailable, kind: KindUnavailable},
	{err: domain.ErrReplayStoreFull, Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "too many DPoP proofs to remember; retry",
		upstream: domain.ErrSourceUnavailable, kind: KindUnavailable},
	{err: domain.ErrSourceUnavailable, Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the product store is unavailable",
		upstream: domain.ErrSourceUnavailable, kind: KindUnavailable},
	{err: domain.ErrSourceNotMigrated, Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the product store's schema is not migrated (run: trustchain migrate up)",
		upstream: domain.ErrSourceUnavailable, kind: KindUnavailable},
	// Listed after the other 503s: a 503 without this code is read back
	// as the source being unavailable.
	{err: domain.ErrOverloaded, Status: http.StatusServiceUnavailable, Code: "overloaded", Message: "the service is at capacity; retry after the advised delay",
		upstream: domain.ErrOverloaded, kind: KindUnavailable},
	{err: domain.ErrSourceTimeout, Status: http.StatusGatewayTimeout, Code: "timeout", Message: "the product store did not answer in time",
		upstream: domain.ErrUpstreamTimeout, kind: KindTimeout},
	{err: domain.ErrUpstreamTimeout, Status: http.StatusGatewayTimeout, Code: "upstream_timeout", Message: "the next service did not answer in time",
		upstream: domain.ErrUpstreamTimeout, kind: KindTimeout},
	{err: domain.ErrUpstreamUnavailable, Status: http.StatusBadGateway, Code: "bad_gateway", Message: "the next service failed",
		upstream: domain.ErrUpstreamUnavailable, kind: KindConnection},
	{err: domain.ErrUpstreamBadResponse, Status: http.StatusBadGateway, Code: "bad_gateway", Message: "the next service returned an invalid answer",
		upstream: domain.ErrUpstreamUnavailable, kind: KindBadResponse},
	{err: domain.ErrInvalidProduct, Status: http.StatusInternalServerError, Code: "internal", Message: "the product store holds an invalid product",
		upstream: domain.ErrUpstreamUnavailable, kind: KindBadResponse},
}

// internalProblem answers an error no row matches: a bug, not a client's or
// a dependency's fault.
var internalProblem = Problem{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error",
	upstream: domain.ErrUpstreamUnavailable, kind: KindBadResponse}

// ProblemFor is the server direction: the row for err. A caller's mistake
// this hop found keeps the message written for that caller.
func ProblemFor(err error) Problem {
	p := problemFor(err)
	var mistake *requestError
	if errors.As(err, &mistake) {
		p.Message = mistake.message
	}
	return p
}

func problemFor(err error) Problem {
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
func problemForStatus(status int) (Problem, bool) {
	for _, p := range problems {
		if p.Status == status {
			return p, true
		}
	}
	return Problem{}, false
}

// UpstreamError is the client direction: it turns the next hop's status
// and error code into the outcome label for the metrics and the domain
// error a caller of this hop sees. The code refines the status only where
// the table has a row for both: a 503 "overloaded" stays overloaded at
// every hop; any other 503 is the source being unavailable.
func UpstreamError(status int, code string) (kind string, err error) {
	p, ok := problemForStatus(status)
	for _, row := range problems {
		if row.Status == status && row.Code == code {
			p = row
			break
		}
	}
	if ok {
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

// OutcomeKind labels the error a call to the next hop returned.
func OutcomeKind(err error) string {
	if err == nil {
		// Before the target errors.As needs: it escapes, so declaring it
		// first would cost every successful call an allocation.
		return KindNone
	}
	var rejection *UpstreamRejection
	switch {
	case errors.As(err, &rejection):
		return KindRejected
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return problemFor(err).kind
}

// ReasonFor names a handled error in the access log: the token reason when
// it is a refused token, otherwise the row's code.
func ReasonFor(err error) string {
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
	return problemFor(err).Code
}

// Refusal is the row the table answers status with under code, if any: a
// hop reading the next hop's refusal answers with that row's message, not
// the next hop's.
func Refusal(status int, code string) (Problem, bool) {
	for _, p := range problems {
		if p.Status == status && p.Code == code {
			return p, true
		}
	}
	return Problem{}, false
}

// UpstreamRejection is the next hop refusing the caller (401 or 403), as
// this hop answers it: the same status and code, this hop's message for
// that code, and only the error, scope and algs of the next hop's
// challenge. Whatever the next hop wrote that fails its checks is replaced
// by this hop's own answer for the same status.
type UpstreamRejection struct {
	Status    int
	Challenge string
	Code      string
	Message   string
}

func (e *UpstreamRejection) Error() string {
	return fmt.Sprintf("upstream refused the request: %d %s", e.Status, e.Code)
}

// maxRetryAfter caps the Retry-After a hop passes on, in seconds.
const maxRetryAfter = 3600

// retryAfterError carries the next hop's Retry-After up, so a 503 stays a
// 503 with the same advice at every hop.
type retryAfterError struct {
	err     error
	seconds int
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// WithRetryAfter is err carrying the next hop's advice of seconds, which
// RetryAfterOf writes back on this hop's answer.
func WithRetryAfter(err error, seconds int) error {
	return &retryAfterError{err: err, seconds: seconds}
}

// ParseRetryAfter reads a delta-seconds Retry-After; an HTTP date or
// anything odd is ignored (this hop then advises its own default).
func ParseRetryAfter(h http.Header) (int, bool) {
	v := h.Get("Retry-After")
	if v == "" || len(v) > 5 {
		return 0, false
	}
	n, ok := parseDecimal(v)
	if !ok || n < 0 {
		return 0, false
	}
	return int(min(n, maxRetryAfter)), true
}

// RetryAfterOf is the Retry-After for a 503 answer of err: the next hop's
// advice when it gave one, else one second.
func RetryAfterOf(err error) string {
	var r *retryAfterError
	if errors.As(err, &r) {
		return strconv.Itoa(r.seconds)
	}
	return "1"
}
