package issuer

import (
	"net/http"
	"time"
)

// ProofChecker checks a DPoP proof sent to the token endpoint (RFC 9449
// §5): signature, typ, alg, htm, htu, iat and jti, with no ath since there
// is no access token yet. It returns the RFC 7638 thumbprint of the
// proof's key, which the token's cnf.jkt then names.
type ProofChecker func(proof, method, htu string, now time.Time) (jkt string, err error)

// DPoP turns on sender-constrained tokens (RFC 9449) at the token endpoint.
type DPoP struct {
	Check      ProofChecker
	Algorithms []string // what Check accepts, for discovery
}

// dpopTokenType is the token_type of a bound token (RFC 9449 §5).
const dpopTokenType = "DPoP"

// proofKey reads the request's DPoP header, if any, and returns the
// thumbprint of the key the token must be bound to: "" for a Bearer token.
// A bad proof is answered here, as RFC 9449 §5 says, and ok is false.
func (iss *Issuer) proofKey(w http.ResponseWriter, r *http.Request) (jkt string, ok bool) {
	proofs := r.Header.Values("DPoP")
	if iss.cfg.DPoP.Check == nil || len(proofs) == 0 {
		return "", true
	}
	if len(proofs) != 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_dpop_proof", "Exactly one DPoP header is allowed.")
		return "", false
	}
	jkt, err := iss.cfg.DPoP.Check(proofs[0], r.Method, iss.cfg.URL+"/oauth/token", iss.cfg.Now())
	if err != nil {
		// The checker's reason names the failed check and never the proof.
		writeOAuthError(w, http.StatusBadRequest, "invalid_dpop_proof", "The DPoP proof was refused: "+err.Error())
		return "", false
	}
	return jkt, true
}

// bind binds an access token's claims to the key with thumbprint jkt,
// when there is one, and returns the token_type to answer with.
func bind(claims map[string]any, jkt string) string {
	if jkt == "" {
		return "Bearer"
	}
	claims["cnf"] = map[string]string{"jkt": jkt}
	return dpopTokenType
}
