package domain

import "errors"

// Sentinel errors shared by every layer. Adapters wrap them with context; the
// HTTP adapter maps them to statuses in one table with errors.Is/As.
var (
	// ErrInvalidProduct means a product or price broke a domain rule.
	ErrInvalidProduct = errors.New("invalid product")

	// ErrTokenMissing means the request carried no bearer token.
	ErrTokenMissing = errors.New("missing bearer token")
	// ErrTokenInvalid means the bearer token failed verification; the
	// concrete failure is a *TokenError that matches it.
	ErrTokenInvalid = errors.New("invalid bearer token")
	// ErrInsufficientScope means a valid token lacks the required scope.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrVerifierNotReady means the issuer's keys are not loaded yet.
	ErrVerifierNotReady = errors.New("token verifier not ready")

	// ErrPeerForbidden means the calling workload is not on the allow-list.
	ErrPeerForbidden = errors.New("peer not allowed")

	// ErrUpstreamUnavailable means the next hop could not be reached or
	// failed (connection refused, 5xx).
	ErrUpstreamUnavailable = errors.New("upstream unavailable")
	// ErrUpstreamBadResponse means the next hop answered with something that
	// is not a valid product list.
	ErrUpstreamBadResponse = errors.New("upstream returned an invalid response")
	// ErrUpstreamTimeout means the next hop did not answer within the budget.
	ErrUpstreamTimeout = errors.New("upstream timed out")

	// ErrSourceUnavailable means the product store failed.
	ErrSourceUnavailable = errors.New("product source unavailable")
)

// Reasons a token is refused. They are bounded, so they double as metric
// label values and log fields.
const (
	ReasonMalformed       = "malformed"
	ReasonBadAlgorithm    = "bad_algorithm"
	ReasonUnknownKID      = "unknown_kid"
	ReasonBadSignature    = "bad_signature"
	ReasonWrongIssuer     = "wrong_issuer"
	ReasonWrongAudience   = "wrong_audience"
	ReasonExpired         = "expired"
	ReasonMissingExpiry   = "missing_exp"
	ReasonNotYetValid     = "not_yet_valid"
	ReasonKeysUnavailable = "keys_unavailable"
)

// TokenError says why a token was refused. It matches ErrTokenInvalid.
type TokenError struct {
	Reason string // one of the Reason constants
	Err    error  // the underlying cause, for logs; never contains the token
}

func (e *TokenError) Error() string {
	if e.Err == nil {
		return "invalid bearer token: " + e.Reason
	}
	return "invalid bearer token: " + e.Reason + ": " + e.Err.Error()
}

// Is makes errors.Is(err, ErrTokenInvalid) hold for every TokenError.
func (e *TokenError) Is(target error) bool { return target == ErrTokenInvalid }

// Unwrap exposes the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// UpstreamRejection is the next hop refusing the caller (401 or 403). The
// gateway passes it back unchanged, so the client sees the hop's own
// challenge and body rather than a generic error.
type UpstreamRejection struct {
	Status    int
	Challenge string // the WWW-Authenticate header, if any
	Body      []byte
}

func (e *UpstreamRejection) Error() string {
	return "upstream refused the request"
}
