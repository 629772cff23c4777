package domain

import "errors"

// DPoP (RFC 9449) refusals. A proof the edge cannot accept is a
// *ProofError; ErrUseDPoPNonce asks the client to retry with the nonce the
// answer carries.
var (
	// ErrProofInvalid means the DPoP proof failed a check; the concrete
	// failure is a *ProofError that matches it.
	ErrProofInvalid = errors.New("invalid DPoP proof")
	// ErrUseDPoPNonce means the proof carried no nonce, or one that is not
	// current: the client retries with the nonce the answer gives.
	ErrUseDPoPNonce = errors.New("DPoP nonce required")
	// ErrReplayStoreFull means the proof could not be remembered, so its
	// jti could not be kept from being replayed: refused as overload.
	ErrReplayStoreFull = errors.New("DPoP replay store full")
)

// Reasons a DPoP proof, or a token's binding to one, is refused. Like the
// token reasons they are bounded metric label values and log fields.
const (
	ReasonProofMissing    = "dpop_missing"   // DPoP scheme without exactly one DPoP header
	ReasonProofMalformed  = "dpop_malformed" // not a compact JWS, or claims that do not decode
	ReasonProofType       = "dpop_bad_typ"   // typ is not dpop+jwt
	ReasonProofAlgorithm  = "dpop_bad_alg"   // alg not on the allow-list
	ReasonProofKey        = "dpop_bad_jwk"   // jwk missing, private or symmetric
	ReasonProofSignature  = "dpop_bad_signature"
	ReasonProofMethod     = "dpop_wrong_htm"
	ReasonProofURL        = "dpop_wrong_htu"
	ReasonProofStale      = "dpop_stale"   // iat older than the max age
	ReasonProofFuture     = "dpop_future"  // iat beyond the allowed skew
	ReasonProofJTI        = "dpop_bad_jti" // jti missing or too long
	ReasonProofReplay     = "dpop_replay"
	ReasonProofAth        = "dpop_wrong_ath"
	ReasonProofKeyBinding = "dpop_wrong_jkt" // the token's cnf.jkt is another key's
	ReasonProofNonce      = "dpop_use_nonce"
	ReasonProofStoreFull  = "dpop_replay_store_full"

	// Refusals of the token for how it came, not for the proof.
	ReasonBoundAsBearer   = "bound_as_bearer"    // a cnf-bound token sent as Bearer at the edge
	ReasonBoundNoPeer     = "bound_without_peer" // a bound token at an inner hop with no workload identity
	ReasonUnboundAsDPoP   = "unbound_as_dpop"    // DPoP scheme with a token that is not bound
	ReasonBearerForbidden = "dpop_required"      // an unbound Bearer token where DPoP is required
)

// ProofReasons lists every reason a DPoP refusal can carry.
func ProofReasons() []string {
	return []string{
		ReasonProofMissing, ReasonProofMalformed, ReasonProofType, ReasonProofAlgorithm,
		ReasonProofKey, ReasonProofSignature, ReasonProofMethod, ReasonProofURL,
		ReasonProofStale, ReasonProofFuture, ReasonProofJTI, ReasonProofReplay,
		ReasonProofAth, ReasonProofKeyBinding, ReasonProofNonce, ReasonProofStoreFull,
		ReasonBoundAsBearer, ReasonBoundNoPeer, ReasonUnboundAsDPoP, ReasonBearerForbidden,
	}
}

// ProofError says why a DPoP proof was refused. It matches
// ErrProofInvalid, or ErrUseDPoPNonce for ReasonProofNonce, or
// ErrReplayStoreFull for ReasonProofStoreFull.
type ProofError struct {
	Reason string // one of the ReasonProof constants
	Err    error  // the cause, for logs; never contains the proof or the token
}

func (e *ProofError) Error() string {
	if e.Err == nil {
		return "invalid DPoP proof: " + e.Reason
	}
	return "invalid DPoP proof: " + e.Reason + ": " + e.Err.Error()
}

// Is matches the sentinel the reason belongs to.
func (e *ProofError) Is(target error) bool {
	switch e.Reason {
	case ReasonProofNonce:
		return target == ErrUseDPoPNonce
	case ReasonProofStoreFull:
		return target == ErrReplayStoreFull
	}
	return target == ErrProofInvalid
}

// Unwrap exposes the cause.
func (e *ProofError) Unwrap() error { return e.Err }
