package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// DPoP modes at the edge (--dpop). The inner hops have none: they take a
// bound token, as Bearer, only from the caller workload identity proved.
const (
	DPoPOff      = "off"      // Bearer only; a bound token is refused
	DPoPAllowed  = "allowed"  // Bearer for unbound tokens, DPoP for bound ones
	DPoPRequired = "required" // DPoP only
)

// DPoP is how the edge treats sender-constrained tokens (RFC 9449). The
// zero value is an inner hop's.
type DPoP struct {
	// Mode is DPoPOff, DPoPAllowed or DPoPRequired at the edge; "" at an
	// inner hop.
	Mode string
	// PublicURL is the edge's scheme, host and base path as clients reach
	// it (behind an ingress); "" means the scheme and Host each request
	// arrived with. A forwarded header is never read.
	PublicURL string
	// Proofs checks the proofs; required with Mode allowed or required.
	Proofs ProofVerifier
	// Algs is the challenges' algs parameter: the proof algorithms accepted.
	Algs string
}

// ProofVerifier checks DPoP proofs; the dpop adapter implements it.
type ProofVerifier interface {
	// CheckProof checks one request's proof against its method, URL and
	// access token at now, and returns the thumbprint of the key that made
	// it, and spend, which records the proof as used (or refuses it as a
	// replay) and is called only once the token and its binding to that
	// key have passed; refusals are *domain.ProofError.
	CheckProof(proof, method, htu, accessToken string, now time.Time) (jkt string, spend func() error, err error)
	// Nonce is the nonce to hand DPoP clients at now, "" without nonces.
	Nonce(now time.Time) string
}

func (d *DPoP) on() bool {
	return d.Proofs != nil && (d.Mode == DPoPAllowed || d.Mode == DPoPRequired)
}

// Header names, as net/http canonicalizes them.
const (
	headerDPoP      = "Dpop"
	headerDPoPNonce = "Dpop-Nonce"
)

// tokenCheck is the token layer of one API: the verifier, the scope and,
// at the edge, DPoP; peerProven says an inner hop's caller is proved by
// workload identity on every request that reaches the check.
type tokenCheck struct {
	verifier   ports.TokenVerifier
	scope      string
	dpop       DPoP
	peerProven bool
	clock      ports.Clock
}

// verify returns the principal and raw token of an acceptable request. A
// proof is checked before the token, so a forged proof costs no token
// check, let alone a key fetch; then the token, then the binding between
// the two; only then is the proof spent, so the bounded replay store holds
// only proofs of requests that are otherwise good.
func (tc tokenCheck) verify(w http.ResponseWriter, r *http.Request, state *requestState) (domain.Principal, string, error) {
	raw, isDPoP, err := accessToken(r, tc.dpop.on())
	state.usedDPoP = isDPoP
	var now time.Time
	if isDPoP {
		now = tc.clock.Now()
		if nonce := tc.dpop.Proofs.Nonce(now); nonce != "" {
			w.Header()[headerDPoPNonce] = []string{nonce}
		}
	}
	if err != nil {
		return domain.Principal{}, "", err
	}
	var jkt string
	var spend func() error
	if isDPoP {
		proofs := r.Header[headerDPoP]
		if len(proofs) != 1 {
			return domain.Principal{}, "", &domain.ProofError{Reason: domain.ReasonProofMissing}
		}
		if jkt, spend, err = tc.dpop.Proofs.CheckProof(proofs[0], r.Method, tc.publicURL(r), raw, now); err != nil {
			return domain.Principal{}, "", err
		}
	}
	principal, err := tc.verifier.Verify(r.Context(), raw)
	if err != nil {
		return domain.Principal{}, "", err
	}
	if err := tc.binding(principal.KeyThumbprint(), isDPoP, jkt); err != nil {
		return principal, "", err
	}
	if spend != nil {
		if err := spend(); err != nil {
			return principal, "", err
		}
		state.proof = "ok"
	}
	if !principal.HasScope(tc.scope) {
		return principal, "", domain.ErrInsufficientScope
	}
	return principal, raw, nil
}

// binding decides whether a token bound to the key bound (or to none) may
// be used the way it came: with a proof by the key jkt, or as Bearer.
func (tc tokenCheck) binding(bound string, isDPoP bool, jkt string) error {
	switch {
	case isDPoP && bound == "":
		return &domain.TokenError{Reason: domain.ReasonUnboundAsDPoP}
	case isDPoP && bound != jkt:
		return &domain.ProofError{Reason: domain.ReasonProofKeyBinding}
	case isDPoP:
		return nil
	case bound == "" && tc.dpop.Mode == DPoPRequired:
		return &domain.TokenError{Reason: domain.ReasonBearerForbidden}
	case bound == "":
		return nil
	case tc.dpop.Mode != "":
		// RFC 9449 §7.2: at the edge a bound token needs its proof.
		return &domain.TokenError{Reason: domain.ReasonBoundAsBearer}
	case !tc.peerProven:
		// An inner hop relies on the edge's proof check only through the
		// workload identity of its one caller; without it, anyone holding
		// the copied token could call.
		return &domain.TokenError{Reason: domain.ReasonBoundNoPeer}
	}
	return nil
}

// publicURL is the request's URL as clients address the edge, without
// query: what a proof's htu must name.
func (tc tokenCheck) publicURL(r *http.Request) string {
	if tc.dpop.PublicURL != "" {
		return strings.TrimSuffix(tc.dpop.PublicURL, "/") + r.URL.EscapedPath()
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return scheme + r.Host + r.URL.EscapedPath()
}

// challenges are the WWW-Authenticate values for a refusal whose table
// row gives challenge: as it is without DPoP; with DPoP, the DPoP
// challenge with the accepted algorithms and, when Bearer is allowed, the
// Bearer one beside it. The error goes on the scheme the request used
// (DPoP for a proof's), and that scheme's challenge comes first, so a
// Bearer client reading only the first line sees what it saw before DPoP;
// the other scheme's challenge is bare.
func (d *DPoP) challenges(challenge string, usedDPoP bool) []string {
	if challenge == "" {
		return nil
	}
	if d == nil || !d.on() {
		return []string{challenge}
	}
	scheme, params, _ := strings.Cut(challenge, " ")
	algs := `algs="` + d.Algs + `"`
	if scheme == "DPoP" || usedDPoP || d.Mode == DPoPRequired {
		if params != "" {
			algs = params + ", " + algs
		}
		if d.Mode == DPoPRequired {
			return []string{"DPoP " + algs}
		}
		return []string{"DPoP " + algs, "Bearer"}
	}
	return []string{challenge, "DPoP " + algs}
}
