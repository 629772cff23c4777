// Package dpop checks DPoP proofs (RFC 9449): that a request comes from the
// holder of the key its access token is bound to. go-jose parses and
// verifies the proof's JWS; this package holds the policy (which algorithms,
// which claims, how fresh, seen before or not) and the per-process replay
// store and stateless nonces it needs.
package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/domain"
)

// Algorithms are the proof signatures accepted: asymmetric only, never
// none or HMAC (RFC 9449 §4.2), in the order challenges list them.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256, jose.EdDSA}

// AlgorithmsParam is Algorithms as a challenge's algs parameter value.
func AlgorithmsParam() string { return strings.Join(AlgorithmNames(), " ") }

const (
	// ProofType is the typ every proof's header carries.
	ProofType = "dpop+jwt"
	// DefaultMaxAge is how old a proof's iat may be.
	DefaultMaxAge = 60 * time.Second
	// DefaultReplaySize bounds the jti store: at the default max age it
	// holds every proof of about 1,600 requests a second, in about 10 MiB.
	DefaultReplaySize = 100_000
	// futureSkew is how far ahead of this clock a proof's iat may be: a
	// client's clock a little fast is not an attack.
	futureSkew = 5 * time.Second
	// maxProofBytes refuses oversized proofs before any parsing; an RSA
	// 4096 key's proof is about 1.5 KiB.
	maxProofBytes = 8 << 10
	// maxJTIBytes bounds what the replay store is keyed on.
	maxJTIBytes = 256
)

// Config configures a Verifier; the zero value is usable.
type Config struct {
	// MaxAge is how old a proof may be. Default DefaultMaxAge.
	MaxAge time.Duration
	// ReplaySize bounds the jti store. Default DefaultReplaySize.
	ReplaySize int
	// NonceSecret, when set, turns on server nonces: every proof must carry
	// the nonce of the current or the previous MaxAge step, an HMAC of the
	// step under this secret, so replicas sharing it agree without talking.
	NonceSecret []byte
	// OnExpire, if set, learns each expired jti dropped to make room.
	OnExpire func()
}

// Proof is what a verified proof establishes.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: what a bound token's cnf.jkt must equal.
	JKT string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time

	jti string // what Spend records
}

// Verifier checks proofs. It is safe for concurrent use.
type Verifier struct {
	maxAge time.Duration
	replay *replayStore
	nonces *nonces // nil without nonces
}

// New returns a verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.MaxAge < 0 || cfg.ReplaySize < 0 {
		return nil, errors.New("dpop config: max age and replay size must not be negative")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.ReplaySize == 0 {
		cfg.ReplaySize = DefaultReplaySize
	}
	v := &Verifier{maxAge: cfg.MaxAge, replay: newReplayStore(cfg.ReplaySize, cfg.OnExpire)}
	if len(cfg.NonceSecret) > 0 {
		v.nonces = newNonces(cfg.NonceSecret, cfg.MaxAge)
	}
	return v, nil
}

// claims are the proof's payload members RFC 9449 §4.2 defines.
type claims struct {
	JTI      string          `json:"jti"`
	Method   string          `json:"htm"`
	URL      string          `json:"htu"`
	IssuedAt json.RawMessage `json:"iat"`
	Ath      *string         `json:"ath"`
	Nonce    *string         `json:"nonce"`
}

// Verify checks proof for a request with method to htu (the request's
// URL as this server is reached, without query) at now, following RFC 9449
// §4.3, and spends its jti: Check, then Spend.
func (v *Verifier) Verify(proof, method, htu, accessToken string, now time.Time) (Proof, error) {
	p, err := v.Check(proof, method, htu, accessToken, now)
	if err != nil {
		return Proof{}, err
	}
	if err := v.Spend(p, now); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// Check checks everything of RFC 9449 §4.3 but replay: typ, an allowed
// asymmetric alg, a public jwk that signed it, htm, htu, iat within the max
// age, the nonce when nonces are on, and ath when accessToken is not "" (at
// a token endpoint it is). The caller compares Proof.JKT with the token's
// cnf.jkt, then spends the proof with Spend. Every refusal is a
// *domain.ProofError naming the reason; none holds the proof or the token.
func (v *Verifier) Check(proof, method, htu, accessToken string, now time.Time) (Proof, error) {
	key, c, err := parse(proof)
	if err != nil {
		return Proof{}, err
	}
	iat, err := v.checkClaims(c, method, htu, accessToken, now)
	if err != nil {
		return Proof{}, err
	}
	jkt, err := Thumbprint(key.Key)
	if err != nil {
		return Proof{}, refuse(domain.ReasonProofKey, err)
	}
	return Proof{JKT: jkt, IssuedAt: iat, jti: c.JTI}, nil
}

// Spend records p's jti until p could no longer be accepted anyway, or
// refuses p as a replay. Called last, once the token and its binding to
// p's key have passed: only a request that would otherwise be served takes
// a slot in the bounded store, so proofs by throwaway keys, or with a
// copied token, cannot fill it.
func (v *Verifier) Spend(p Proof, now time.Time) error {
	return v.replay.add(p.JKT, p.jti, p.IssuedAt.Add(v.maxAge), now)
}

// Nonce is the nonce to give clients at now, or "" without nonces.
func (v *Verifier) Nonce(now time.Time) string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.at(now)
}

// ReplayLen is how many jtis the replay store holds.
func (v *Verifier) ReplayLen() int { return v.replay.len() }

// parse checks the proof's JOSE layer: go-jose parses it with only the
// allowed algorithms and verifies its signature with the jwk it carries.
func parse(proof string) (*jose.JSONWebKey, claims, error) {
	if len(proof) > maxProofBytes {
		return nil, claims{}, refuse(domain.ReasonProofMalformed, fmt.Errorf("proof is %d bytes, more than %d", len(proof), maxProofBytes))
	}
	jws, err := jose.ParseSignedCompact(proof, Algorithms)
	if err != nil {
		return nil, claims{}, refuse(parseFailure(proof), err)
	}
	if len(jws.Signatures) != 1 {
		return nil, claims{}, refuse(domain.ReasonProofMalformed, errors.New("not one signature"))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, ProofType) {
		return nil, claims{}, refuse(domain.ReasonProofType, fmt.Errorf("typ is %q", truncate(typ)))
	}
	key := h.JSONWebKey
	if key == nil || !key.IsPublic() || !key.Valid() {
		return nil, claims{}, refuse(domain.ReasonProofKey, errors.New("jwk is missing or not a public key"))
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, claims{}, refuse(domain.ReasonProofSignature, err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, claims{}, refuse(domain.ReasonProofMalformed, fmt.Errorf("decode claims: %w", err))
	}
	return key, c, nil
}

// parseFailure names why go-jose refused a proof, from its header: an
// algorithm or a key with private members is a reason of its own.
func parseFailure(proof string) string {
	segment, _, _ := strings.Cut(proof, ".")
	b, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return domain.ReasonProofMalformed
	}
	var h struct {
		Alg string                     `json:"alg"`
		JWK map[string]json.RawMessage `json:"jwk"`
	}
	if json.Unmarshal(b, &h) != nil {
		return domain.ReasonProofMalformed
	}
	allowed := false
	for _, a := range Algorithms {
		allowed = allowed || string(a) == h.Alg
	}
	if !allowed {
		return domain.ReasonProofAlgorithm
	}
	if h.JWK != nil {
		return domain.ReasonProofKey
	}
	return domain.ReasonProofMalformed
}

// checkClaims holds the payload to the request and this clock, and returns
// the proof's iat.
func (v *Verifier) checkClaims(c claims, method, htu, accessToken string, now time.Time) (time.Time, error) {
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTIBytes:
		return time.Time{}, refuse(domain.ReasonProofJTI, fmt.Errorf("jti is missing or over %d bytes", maxJTIBytes))
	case c.Method != method:
		return time.Time{}, refuse(domain.ReasonProofMethod, fmt.Errorf("htm is %q, the request's method %q", truncate(c.Method), method))
	case !SameURL(c.URL, htu):
		return time.Time{}, refuse(domain.ReasonProofURL, fmt.Errorf("htu %q is not %q", truncate(c.URL), truncate(htu)))
	}
	iat, ok := numericDate(c.IssuedAt)
	switch {
	case !ok:
		return time.Time{}, refuse(domain.ReasonProofMalformed, errors.New("iat is missing or not a date"))
	case now.Sub(iat) > v.maxAge:
		return time.Time{}, refuse(domain.ReasonProofStale, fmt.Errorf("issued %s ago, more than %s", now.Sub(iat).Round(time.Second), v.maxAge))
	case iat.Sub(now) > futureSkew:
		return time.Time{}, refuse(domain.ReasonProofFuture, fmt.Errorf("issued %s ahead of this clock", iat.Sub(now).Round(time.Second)))
	}
	if accessToken != "" && (c.Ath == nil || subtle.ConstantTimeCompare([]byte(*c.Ath), []byte(AccessTokenHash(accessToken))) != 1) {
		return time.Time{}, refuse(domain.ReasonProofAth, errors.New("ath is missing or not the hash of the access token"))
	}
	if v.nonces != nil && (c.Nonce == nil || !v.nonces.valid(*c.Nonce, now)) {
		return time.Time{}, refuse(domain.ReasonProofNonce, errors.New("nonce is missing or not current"))
	}
	return iat, nil
}

// AccessTokenHash is a proof's ath for token: base64url SHA-256 of its
// ASCII bytes (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// numericDate reads an iat: a JSON number (never a string holding one) of
// seconds, within the range of dates a clock can mean.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || raw[0] == '"' {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// SameURL reports whether a proof's htu names the URL want (RFC 9449
// §4.3): scheme and host compared case-insensitively with default ports
// dropped, the path exactly (an empty path is "/"), and query and fragment
// ignored on both sides.
func SameURL(htu, want string) bool {
	a, err := url.Parse(htu)
	if err != nil {
		return false
	}
	b, err := url.Parse(want)
	if err != nil {
		return false
	}
	return a.User == nil && a.Opaque == "" && a.Host != "" &&
		strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(hostPort(a), hostPort(b)) &&
		orSlash(a.EscapedPath()) == orSlash(b.EscapedPath())
}

// hostPort is u's host with the scheme's default port dropped.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" || strings.EqualFold(u.Scheme, "https") && port == "443" || strings.EqualFold(u.Scheme, "http") && port == "80" {
		return u.Hostname()
	}
	return u.Host
}

func orSlash(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

func refuse(reason string, cause error) error {
	return &domain.ProofError{Reason: reason, Err: cause}
}

// truncate bounds a client's value quoted in an error, which is logged.
func truncate(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

// CheckProof is Check for the HTTP server, which needs the key's
// thumbprint now and spends the proof once the token and its binding have
// passed.
func (v *Verifier) CheckProof(proof, method, htu, accessToken string, now time.Time) (string, func() error, error) {
	p, err := v.Check(proof, method, htu, accessToken, now)
	if err != nil {
		return "", nil, err
	}
	return p.JKT, func() error { return v.Spend(p, now) }, nil
}
