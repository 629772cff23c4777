package oidc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// claims are the parts of an access token the verifier reads, decoded once
// from the verified payload. A claim another check needs is one more entry
// in parseClaims' table.
type claims struct {
	Issuer    string
	Subject   string
	Audience  audience
	Expiry    *numericDate // nil when absent or null
	NotBefore *numericDate
	IssuedAt  *numericDate // read only to hold it to the number rule
	Scopes    []string     // from every scope claim, without duplicates
	// Confirmation binds a DPoP token to its key (RFC 9449 §6.1); its jkt
	// is part of the principal, so of the cached verdict too.
	Confirmation *confirmation
}

type confirmation struct {
	JKT string `json:"jkt"`
}

// parseClaims decodes payload strictly: each claim read must have its
// registered JSON type, and each scope claim is a space-delimited string
// or an array of strings.
func parseClaims(payload []byte, scopeClaims []string) (claims, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return claims{}, err
	}
	var c claims
	for name, dst := range map[string]any{
		"iss": &c.Issuer, "sub": &c.Subject, "aud": &c.Audience,
		"exp": &c.Expiry, "nbf": &c.NotBefore, "iat": &c.IssuedAt, "cnf": &c.Confirmation,
	} {
		if b, ok := fields[name]; ok {
			if err := json.Unmarshal(b, dst); err != nil {
				return claims{}, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if c.Confirmation != nil && c.Confirmation.JKT == "" {
		// Bound some other way (an mTLS certificate's x5t#S256): a binding
		// this service cannot check is refused, never ignored.
		return claims{}, errors.New("cnf: no jkt")
	}
	for _, name := range scopeClaims {
		b, ok := fields[name]
		if !ok {
			continue
		}
		granted, err := scopesOf(b)
		if err != nil {
			return claims{}, fmt.Errorf("%s: %w", name, err)
		}
		for _, s := range granted {
			if s != "" && !slices.Contains(c.Scopes, s) {
				c.Scopes = append(c.Scopes, s)
			}
		}
	}
	return c, nil
}

// scopesOf reads one scope claim: a string is split on spaces (RFC 6749
// section 3.3 delimits scopes with %x20 only), an array's strings are taken
// whole, never split, so "read:products write" in an array grants neither.
func scopesOf(b json.RawMessage) ([]string, error) {
	var many []string
	var err error
	switch b[0] { // json.Unmarshal has checked b is one JSON value
	case '"':
		var one string
		err = json.Unmarshal(b, &one)
		many = strings.Split(one, " ")
	case '[', 'n': // an array, or null: no scopes
		err = json.Unmarshal(b, &many)
	default:
		err = errors.New("not a string or an array")
	}
	if err != nil {
		return nil, errors.New("must be a space-delimited string or an array of strings")
	}
	return many, nil
}

// numericDate is a JWT NumericDate held to whole int64 seconds. Unlike
// go-oidc's, it refuses a number sent as a string, and one out of int64's
// range rather than letting 1e300 wrap to the most negative int64.
type numericDate int64

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("must be a JSON number")
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*d = numericDate(n)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || !(f >= math.MinInt64 && f < math.MaxInt64) {
		return errors.New("is not within int64 seconds") // b may be long: not repeated
	}
	*d = numericDate(math.Floor(f))
	return nil
}

// maxUnix bounds what time() returns, far beyond any real date, so that
// time.Unix and Add never overflow; the order of any two dates that matter
// is kept.
const maxUnix = 1 << 62

// time is the date as a time.Time; the zero time when d is nil (no claim).
func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return time.Unix(max(-maxUnix, min(int64(*d), maxUnix)), 0)
}

func (d *numericDate) String() string {
	if d == nil {
		return "none"
	}
	return strconv.FormatInt(int64(*d), 10)
}

// canonical refuses every spelling of a compact JWS but the one: exactly
// three segments of the base64url alphabet, no padding, no line breaks, and
// each decodable by base64.RawURLEncoding.Strict, so the unused bits of a
// segment's last character are zero. Only the last quantum can fail that
// once the alphabet holds, so only it is decoded; a test checks the
// equivalence. Without this, 15 re-spellings of every signature verify and
// each would take its own cache entry.
func canonical(raw string) error {
	segments := 0
	for rest := raw; ; {
		segment, after, more := strings.Cut(rest, ".")
		if segments++; segments > 3 || !canonicalSegment(segment) {
			return errors.New("token is not canonical compact serialization")
		}
		if !more {
			break
		}
		rest = after
	}
	if segments != 3 {
		return errors.New("token is not canonical compact serialization")
	}
	return nil
}

func canonicalSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64URLAlphabet[s[i]] {
			return false
		}
	}
	var buf [3]byte
	_, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(s[len(s)-len(s)%4:]))
	return err == nil
}

// base64URLAlphabet marks the 64 characters of RFC 4648's base64url.
var base64URLAlphabet = func() (set [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		set[c] = true
	}
	return set
}()
