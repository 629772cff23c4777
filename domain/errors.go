package domain

import (
	"errors"
	"slices"
)

// Sentinel errors shared by every layer. Adapters wrap them with context; the
// HTTP adapter maps them to statuses in one table with errors.Is/As.
var (
	// ErrInvalidProduct means a product or price broke a domain rule.
	ErrInvalidProduct = errors.New("invalid product")
	// ErrInvalidPage means a page does not answer its request: too many
	// products, ids out of order or not after the cursor.
	ErrInvalidPage = errors.New("invalid page")
	// ErrInvalidRequest means the caller asked for something malformed,
	// such as a page limit out of range or an id that is not a number.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound means the product asked for does not exist.
	ErrNotFound = errors.New("not found")

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
	// is not a valid answer.
	ErrUpstreamBadResponse = errors.New("upstream returned an invalid response")
	// ErrUpstreamTimeout means the next hop did not answer within the
	// budget, or said a hop below it ran out of its own.
	ErrUpstreamTimeout = errors.New("upstream timed out")

	// ErrSourceUnavailable means the product store failed, or said it
	// cannot serve for now; the caller may retry.
	ErrSourceUnavailable = errors.New("product source unavailable")
	// ErrSourceNotMigrated means the product store is reachable but its
	// schema is missing or behind the binary's: an operator must migrate
	// it, retrying will not help.
	ErrSourceNotMigrated = errors.New("product store schema is not migrated")
	// ErrSourceTimeout means the product store did not answer within the
	// hop's budget.
	ErrSourceTimeout = errors.New("product source timed out")
	// ErrOverloaded means a hop had no room for the request and refused it
	// at once; the caller may retry after the advised delay.
	ErrOverloaded = errors.New("overloaded")
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

	// Reasons for the refusals that are not a bad token.
	ReasonMissing           = "missing"
	ReasonInsufficientScope = "insufficient_scope"
	ReasonNotReady          = "not_ready"
)

// TokenReasons lists every reason TokenReason can return for a refusal.
func TokenReasons() []string {
	return append([]string{
		ReasonMissing, ReasonInsufficientScope, ReasonNotReady,
		ReasonMalformed, ReasonBadAlgorithm, ReasonUnknownKID, ReasonBadSignature,
		ReasonWrongIssuer, ReasonWrongAudience, ReasonExpired, ReasonMissingExpiry,
		ReasonNotYetValid, ReasonKeysUnavailable,
	}, ProofReasons()...)
}

// TokenReason names why err refused a bearer token, or returns "" when err
// is not a token refusal. The set of answers is bounded: a TokenError whose
// Reason is not one of the constants above counts as malformed.
func TokenReason(err error) string {
	if err == nil {
		return "" // before te, which would otherwise be allocated on every call
	}
	var te *TokenError
	var pe *ProofError
	switch {
	case errors.Is(err, ErrTokenMissing):
		return ReasonMissing
	case errors.Is(err, ErrInsufficientScope):
		return ReasonInsufficientScope
	case errors.Is(err, ErrVerifierNotReady):
		return ReasonNotReady
	case errors.As(err, &te):
		switch te.Reason {
		case ReasonMalformed, ReasonBadAlgorithm, ReasonUnknownKID, ReasonBadSignature,
			ReasonWrongIssuer, ReasonWrongAudience, ReasonExpired, ReasonMissingExpiry,
			ReasonNotYetValid, ReasonKeysUnavailable:
			return te.Reason
		case ReasonBoundAsBearer, ReasonBoundNoPeer, ReasonUnboundAsDPoP, ReasonBearerForbidden:
			return te.Reason
		}
		return ReasonMalformed
	case errors.As(err, &pe):
		if slices.Contains(ProofReasons(), pe.Reason) {
			return pe.Reason
		}
		return ReasonProofMalformed
	}
	return ""
}

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
